"""The drift decision over many seeded days: ordinary days rarely alert, shifted days always.

A day is 288 scheduled runs of 5 rows each drawn from Iris, as ``batch_inference`` draws
them; the reference is Iris as the prepare stage writes it, and the predictions are a
fitted forest's (its predictions on the reference give the class shares expected). Only
the decision is exercised here (``batchserving.monitoring.drift``); the DAG and the stage
are tested in the integration tier. Measured: 4 of 400 ordinary days alert (1 %), against
15 (3.75 %) with the naive rule.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from batchserving.monitoring.drift import decide
from batchserving.training.iris import CLASSES, FEATURES
from stages.prepare import iris_frame

RUNS_PER_DAY = 288
ROWS_PER_RUN = 5
FALSE_ALARM_RATE = 0.05
DAYS = 400


@pytest.fixture(scope="module")
def iris():
    return iris_frame()


@pytest.fixture(scope="module")
def predicted_by_row(iris, model) -> np.ndarray:
    """The forest's prediction for each of Iris' 150 rows."""
    return np.asarray(model.predict(iris[FEATURES]))


def day_rows(seed: int) -> np.ndarray:
    """The Iris rows of one day: 288 runs, each 5 distinct rows."""
    rng = np.random.default_rng(seed)
    return rng.random((RUNS_PER_DAY, 150)).argsort(axis=1)[:, :ROWS_PER_RUN].ravel()


def monitor(iris, predicted_by_row, rows: np.ndarray, shift: dict[str, float] | None = None):
    reference = {f: iris[f].to_numpy() for f in FEATURES}
    current = {f: iris[f].to_numpy()[rows] + (shift or {}).get(f, 0.0) for f in FEATURES}
    # The prediction reference: the model's own class shares on its training data.
    shares = {c: float(np.mean(predicted_by_row == c)) for c in CLASSES}
    return decide(reference, current, shares, predicted_by_row[rows], FALSE_ALARM_RATE)


def test_ordinary_days_alert_at_most_at_the_false_alarm_rate(iris, predicted_by_row) -> None:
    decisions = [monitor(iris, predicted_by_row, day_rows(seed)) for seed in range(DAYS)]
    alarms = sum(d.drifted for d in decisions)
    # Bonferroni bounds the daily rate by 5 %: 20 of 400 expected at most; 3 sigma above.
    bound = DAYS * FALSE_ALARM_RATE + 3 * math.sqrt(DAYS * FALSE_ALARM_RATE)
    assert alarms <= bound, f"{alarms} of {DAYS} ordinary days alerted"
    # Every test ran on every day: 4 features (KS) and the predicted classes (chi-square).
    assert {len(d.tests) for d in decisions} == {5}
    assert {t.threshold for d in decisions for t in d.tests} == {FALSE_ALARM_RATE / 5}
    # The naive rule (any p < 0.05) alerts more often: the correction is what keeps it rare.
    naive = sum(any(t.p_value < FALSE_ALARM_RATE for t in d.tests) for d in decisions)
    assert naive > alarms


def test_a_shifted_petal_length_is_flagged_on_that_feature(iris, predicted_by_row) -> None:
    for seed in range(20):
        decision = monitor(iris, predicted_by_row, day_rows(seed), {"petal_length": 1.5})
        assert decision.drifted
        by_column = {t.column: t for t in decision.tests}
        assert by_column["petal_length"].drifted and by_column["petal_length"].test == "ks"
        assert by_column["petal_length"].p_value < 1e-10
        assert not any(by_column[f].drifted for f in FEATURES if f != "petal_length")
        assert decision.drift_share == 0.25


def test_a_small_day_skips_the_class_test_and_corrects_for_the_tests_it_ran(
    iris, predicted_by_row
) -> None:
    decision = monitor(iris, predicted_by_row, day_rows(0)[:10])
    assert [t.test for t in decision.tests] == ["ks"] * 4  # 10 rows: under 5 per class expected
    assert {t.threshold for t in decision.tests} == {FALSE_ALARM_RATE / 4}
