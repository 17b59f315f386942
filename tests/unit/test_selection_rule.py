"""The promotion gate of model_selection, as properties over random per-row outcome pairs.

Each example draws the true classes of some test rows and two models' predictions of
them; the scores are scikit-learn's, the evidence is the gate's, and the rule decides.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchserving.core.params import SelectionParams
from batchserving.selection.evidence import gather
from batchserving.selection.rule import (
    KEEP,
    PROMOTE,
    SelectionError,
    decide,
    metric_deltas,
    parse_metrics,
)
from tests.unit.conftest import METRICS, fast, one_row_gain, predictions, score

TESTS = ("mcnemar", "bootstrap", "none")


gates = st.builds(
    SelectionParams,
    primary_metric=st.sampled_from(METRICS),
    min_improvement=st.floats(min_value=0.0, max_value=0.2),
    test=st.sampled_from(TESTS),
    alpha=st.floats(min_value=0.001, max_value=0.5),
    min_score=st.floats(min_value=0.0, max_value=1.0),
)


def judge(
    params: SelectionParams, truth: np.ndarray, champion: np.ndarray, challenger: np.ndarray
) -> str:
    """The gate's decision for ``challenger`` against the prod ``champion``."""
    metric = params.primary_metric
    evidence = gather(params.test, params.alpha, metric, truth, champion, challenger)
    return decide(
        score(metric, truth, challenger), score(metric, truth, champion), params, evidence
    )[0]


@fast
@given(rows=predictions(), params=gates)
def test_never_promotes_identical_predictions(rows, params):
    truth, model, _ = rows
    assert judge(params, truth, model, model.copy()) == KEEP


@fast
@given(rows=predictions(), params=gates, has_champion=st.booleans())
def test_never_promotes_below_the_floor(rows, params, has_champion):
    truth, champion, challenger = rows
    metric = params.primary_metric
    if has_champion:
        decision = judge(params, truth, champion, challenger)
    else:
        decision = decide(score(metric, truth, challenger), None, params)[0]
    if score(metric, truth, challenger) < params.min_score:
        assert decision == KEEP


@fast
@given(rows=predictions(), params=gates)
def test_swapping_champion_and_challenger_never_promotes_both(rows, params):
    truth, first, second = rows
    assert not (
        judge(params, truth, first, second) == PROMOTE == judge(params, truth, second, first)
    )


@fast
@given(rows=predictions(), params=gates, has_champion=st.booleans())
def test_with_test_none_the_decision_is_the_point_rule(rows, params, has_champion):
    params = params.model_copy(update={"test": "none", "min_score": 0.0})
    truth, champion, challenger = rows
    metric = params.primary_metric
    new, old = score(metric, truth, challenger), score(metric, truth, champion)
    if has_champion:
        decision = judge(params, truth, champion, challenger)
        point_rule = PROMOTE if new - old > params.min_improvement else KEEP
    else:
        decision, point_rule = decide(new, None, params)[0], PROMOTE
    assert decision == point_rule


@fast
@given(rows=predictions(), params=gates)
def test_the_bootstrap_test_promotes_only_above_the_interval(rows, params):
    params = params.model_copy(update={"test": "bootstrap"})
    truth, champion, challenger = rows
    evidence = gather("bootstrap", params.alpha, params.primary_metric, truth, champion, challenger)
    low, high = evidence.delta_ci
    assert low <= high
    if judge(params, truth, champion, challenger) == PROMOTE:
        assert low > params.min_improvement


@pytest.mark.parametrize(
    ("challenger_only", "p_value", "decision"),
    [(1, 1.0, KEEP), (5, 0.0625, KEEP), (6, 0.03125, PROMOTE)],
)
def test_mcnemar_needs_six_unanswered_rows_on_45(challenger_only, p_value, decision):
    truth, champion, challenger = one_row_gain(45, challenger_only)
    params = SelectionParams.from_mapping({"min_score": 0.0})
    evidence = gather("mcnemar", 0.05, "f1_macro", truth, champion, challenger)
    assert evidence.p_value == p_value
    assert judge(params, truth, champion, challenger) == decision


def test_the_percentile_bootstrap_is_the_more_lenient_test():
    """4 rows only the challenger gets right, none the other way: McNemar p = 0.125, but
    a resample misses all four rows only about (41/45)^45 = 1.5% of the time, so the 95%
    interval's lower bound is above 0."""
    truth, champion, challenger = one_row_gain(45, 4)
    params = SelectionParams.from_mapping({"min_score": 0.0})
    assert judge(params, truth, champion, challenger) == KEEP
    bootstrap = params.model_copy(update={"test": "bootstrap"})
    assert judge(bootstrap, truth, champion, challenger) == PROMOTE


def test_the_floor_blocks_the_first_version_and_says_so():
    params = SelectionParams.from_mapping({"min_score": 0.9})
    decision, reason = decide(0.89, None, params)
    assert decision == KEEP and "floor" in reason and "min_score 0.9" in reason
    assert decide(0.9, None, params)[0] == PROMOTE


def test_a_gain_without_evidence_is_an_error():
    with pytest.raises(SelectionError, match="evidence"):
        decide(0.95, 0.9, SelectionParams.from_mapping({}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "is missing"),
        ("", "is empty"),
        ("   \n", "is empty"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"accuracy": 0.9}', "has no 'f1_macro'"),
        ('{"f1_macro": NaN}', "not a finite number"),
        ('{"f1_macro": "0.9"}', "not a finite number"),
        ('{"f1_macro": true}', "not a finite number"),
    ],
)
def test_bad_metrics_are_refused_with_a_clear_message(text, expected):
    with pytest.raises(SelectionError, match=expected) as info:
        parse_metrics(text, "metrics.json", "f1_macro")
    assert "metrics.json" in str(info.value)


def test_deltas_cover_shared_scores_but_not_counts():
    deltas = metric_deltas(
        {"accuracy": 0.9, "f1_macro": 0.95, "n_test": 45, "f1_per_class": {}},
        {"accuracy": 0.8, "f1_macro": 0.95, "n_test": 45},
    )
    assert deltas == {"accuracy": 0.1, "f1_macro": 0.0}
    assert all(math.isfinite(v) for v in deltas.values())
