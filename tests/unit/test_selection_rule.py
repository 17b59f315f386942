"""The promotion rule of model_selection, as properties over random metric pairs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchserving.core.params import ParamsError, SelectionParams
from batchserving.selection.rule import (
    KEEP,
    PROMOTE,
    SelectionError,
    decide,
    metric_deltas,
    parse_metrics,
)

scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
margins = st.floats(min_value=0.0, max_value=0.5, allow_nan=False)


@given(challenger=scores, champion=scores, min_improvement=margins)
def test_never_promotes_an_equal_or_worse_challenger(challenger, champion, min_improvement):
    decision, reason = decide(challenger, champion, min_improvement)
    if challenger <= champion:
        assert decision == KEEP, reason
    if decision == PROMOTE:
        assert challenger - champion > min_improvement


@given(challenger=scores, champion=scores, min_improvement=margins)
def test_promotes_exactly_when_the_gain_exceeds_the_margin(challenger, champion, min_improvement):
    decision, _ = decide(challenger, champion, min_improvement)
    assert (decision == PROMOTE) == (challenger - champion > min_improvement)


@given(challenger=scores, min_improvement=margins)
def test_always_promotes_on_bootstrap(challenger, min_improvement):
    assert decide(challenger, None, min_improvement)[0] == PROMOTE


@given(score=scores, min_improvement=margins)
def test_a_tie_keeps_the_champion(score, min_improvement):
    assert decide(score, score, min_improvement)[0] == KEEP


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


def test_selection_params_defaults_and_errors():
    params = SelectionParams.from_mapping({})
    assert (params.primary_metric, params.min_improvement) == ("f1_macro", 0.0)
    with pytest.raises(ParamsError, match="selection.min_improvement"):
        SelectionParams.from_mapping({"min_improvement": -0.1})
    with pytest.raises(ParamsError, match="selection.primary_metric"):
        SelectionParams.from_mapping({"primary_metric": ""})
