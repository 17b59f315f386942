"""The promotion gate of model_selection, as properties over random per-row outcome pairs.

Each example draws the true classes of some test rows and two models' predictions of
them; the scores are scikit-learn's, the evidence is the gate's, and the rule decides.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, f1_score

from batchserving.core.params import SelectionParams
from batchserving.selection.evidence import RESAMPLES, Evidence, gather, metric_scores
from batchserving.selection.rule import (
    KEEP,
    PROMOTE,
    SelectionError,
    decide,
    evidence_line,
    metric_deltas,
    parse_metrics,
)

TESTS = ("mcnemar", "bootstrap", "none")
METRICS = ("f1_macro", "accuracy")


@st.composite
def predictions(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True classes of n rows and two models' predictions (mostly right, as real models are)."""
    n = draw(st.integers(min_value=2, max_value=60))
    classes = st.integers(min_value=0, max_value=2)
    truth = np.array(draw(st.lists(classes, min_size=n, max_size=n)))

    def model() -> np.ndarray:
        wrong = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        other = draw(st.lists(st.integers(min_value=1, max_value=2), min_size=n, max_size=n))
        return np.where(wrong, (truth + np.array(other)) % 3, truth)

    return truth, model(), model()


gates = st.builds(
    SelectionParams,
    primary_metric=st.sampled_from(METRICS),
    min_improvement=st.floats(min_value=0.0, max_value=0.2),
    test=st.sampled_from(TESTS),
    alpha=st.floats(min_value=0.001, max_value=0.5),
    min_score=st.floats(min_value=0.0, max_value=1.0),
)


def score(metric: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    """The primary metric as metrics.json holds it (scikit-learn, rounded to 6 digits)."""
    if metric == "accuracy":
        return round(float(accuracy_score(truth, predicted)), 6)
    return round(float(f1_score(truth, predicted, average="macro", zero_division=0)), 6)


def judge(
    params: SelectionParams, truth: np.ndarray, champion: np.ndarray, challenger: np.ndarray
) -> str:
    """The gate's decision for ``challenger`` against the prod ``champion``."""
    metric = params.primary_metric
    evidence = gather(params.test, params.alpha, metric, truth, champion, challenger)
    return decide(
        score(metric, truth, challenger), score(metric, truth, champion), params, evidence
    )[0]


fast = settings(deadline=None, max_examples=60)


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


def one_row_gain(n: int, challenger_only: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n rows of balanced classes; the champion misses ``challenger_only`` rows the other gets."""
    truth = np.arange(n) % 3
    champion = truth.copy()
    champion[:challenger_only] = (truth[:challenger_only] + 1) % 3
    return truth, champion, truth.copy()


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


def test_the_floor_blocks_the_first_version_and_says_so():
    params = SelectionParams.from_mapping({"min_score": 0.9})
    decision, reason = decide(0.89, None, params)
    assert decision == KEEP and "floor" in reason and "min_score 0.9" in reason
    assert decide(0.9, None, params)[0] == PROMOTE


def test_a_gain_without_evidence_is_an_error():
    with pytest.raises(SelectionError, match="evidence"):
        decide(0.95, 0.9, SelectionParams.from_mapping({}))


def test_evidence_rejects_rows_that_do_not_pair():
    with pytest.raises(ValueError, match="one length"):
        gather("mcnemar", 0.05, "f1_macro", [0, 1, 2], [0, 1], [0, 1, 2])
    assert isinstance(gather("none", 0.05, "accuracy", [0, 1], [0, 1], [1, 1]), Evidence)


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
