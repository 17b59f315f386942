"""The evidence the promotion gate weighs: McNemar's p-value and the bootstrap interval.

The p-values are scipy's on the discordant counts, the resampled scores scikit-learn's,
and the interval is seeded, so the evidence a run records can be recomputed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest

from batchserving.selection.evidence import RESAMPLES, Evidence, gather, metric_scores
from batchserving.selection.rule import evidence_line
from tests.unit.conftest import METRICS, fast, one_row_gain, predictions, score


@fast
@given(rows=predictions(), alpha=st.floats(min_value=0.001, max_value=0.5))
def test_p_values_are_scipys_on_the_discordant_counts(rows, alpha):
    truth, champion, challenger = rows
    evidence = gather("mcnemar", alpha, "f1_macro", truth, champion, challenger)
    challenger_only = sum(c == t != h for t, h, c in zip(truth, champion, challenger, strict=True))
    champion_only = sum(h == t != c for t, h, c in zip(truth, champion, challenger, strict=True))
    assert (evidence.challenger_only, evidence.champion_only) == (challenger_only, champion_only)
    assert evidence.n == len(truth)
    if challenger_only + champion_only:
        expected = binomtest(challenger_only, challenger_only + champion_only, p=0.5).pvalue
        assert evidence.p_value == expected
    else:
        assert evidence.p_value == 1.0


@fast
@given(rows=predictions(), metric=st.sampled_from(METRICS))
def test_the_resampled_metric_is_scikit_learns(rows, metric):
    truth, champion, challenger = rows
    for predicted in (champion, challenger):
        assert math.isclose(
            float(metric_scores(metric, truth, predicted)),
            score(metric, truth, predicted),
            abs_tol=1e-6,
        )
    # Along the last axis, one score per resample: as the bootstrap calls it.
    stacked = metric_scores(metric, np.stack([truth, truth]), np.stack([champion, challenger]))
    assert stacked.shape == (2,)


def test_the_interval_is_seeded_and_named_in_the_json():
    truth, champion, challenger = one_row_gain(45, 1)
    first = gather("bootstrap", 0.05, "accuracy", truth, champion, challenger)
    assert gather("bootstrap", 0.05, "accuracy", truth, champion, challenger) == first
    record = first.as_dict()
    assert record["delta_ci"]["low"] == 0.0 and record["delta_ci"]["high"] > 0
    assert record["bootstrap"]["resamples"] == RESAMPLES
    assert record["outcomes"]["champion"] == "0" + "1" * 44
    assert record["outcomes"]["challenger"] == "1" * 45
    line = evidence_line(record)
    assert "McNemar p = 1" in line and "[+0.0000, +" in line and "\n" not in line


def test_evidence_rejects_rows_that_do_not_pair():
    with pytest.raises(ValueError, match="one length"):
        gather("mcnemar", 0.05, "f1_macro", [0, 1, 2], [0, 1], [0, 1, 2])
    assert isinstance(gather("none", 0.05, "accuracy", [0, 1], [0, 1], [1, 1]), Evidence)
