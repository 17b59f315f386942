"""The day's drift tests and the one decision drawn from them.

Each served feature is compared with the same feature of the training data by the
two-sample Kolmogorov-Smirnov test (scipy picks the exact distribution for small samples,
the asymptotic one for large); the predicted classes are compared with the class
shares the same model predicts on its training data by Pearson's chi-square goodness of
fit (not with the true labels' shares: a model's own errors would then alarm), run only
when every class expects at least ``MIN_EXPECTED`` rows (the approximation's condition). The rows
tested are a uniform sample of at most ``monitoring.max_sample_rows``, so a huge day
neither costs unbounded memory nor turns a negligible difference into a certain alarm.

The decision controls false alarms: a day is drifted when any test's p-value is below
``false_alarm_rate / m`` (Bonferroni over the day's ``m`` tests), so an ordinary day
alerts with probability at most ``false_alarm_rate`` (5 % by default; the ties of Iris'
0.1 cm measurements make the tests conservative: 1 % of 400 seeded ordinary days in
``tests/unit/test_monitoring_drift.py``). Uncorrected, five tests at p < 0.05 could alarm
on up to 23 % of ordinary days (3.75 % measured there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class TestResult:
    """One test of the day: what it compared, how, and whether it crossed the threshold."""

    column: str
    test: str  # "ks" (a feature) or "chi2" (the predicted classes)
    statistic: float
    p_value: float
    threshold: float
    drifted: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftDecision:
    """The day's tests and what they decide."""

    tests: list[TestResult]
    features_tested: int

    @property
    def drifted(self) -> bool:
        return any(t.drifted for t in self.tests)

    @property
    def drifted_columns(self) -> list[str]:
        return [t.column for t in self.tests if t.drifted]

    @property
    def drift_share(self) -> float:
        """Share of the features tested whose distribution drifted (0 if none tested)."""
        drifted = sum(1 for t in self.tests if t.drifted and t.test == "ks")
        return drifted / self.features_tested if self.features_tested else 0.0


def _raw_tests(
    reference: dict[str, Any],
    current: dict[str, Any],
    class_shares: dict[str, float],
    predicted: Any,
) -> list[tuple[str, str, float, float]]:
    """(column, test, statistic, p-value) of each test that applies to these rows.

    ``predicted`` holds only classes of ``class_shares`` (the reader checks every row).
    """
    import numpy as np
    from scipy import stats

    found = []
    for column, values in current.items():
        result = stats.ks_2samp(reference[column], values)
        found.append((column, "ks", float(result.statistic), float(result.pvalue)))
    classes = sorted(class_shares)
    expected = np.array([class_shares[c] for c in classes]) * len(predicted)
    if len(predicted) and expected.min() >= MIN_EXPECTED:
        observed = np.array([np.count_nonzero(predicted == c) for c in classes])
        result = stats.chisquare(observed, expected)
        found.append(("predicted_class", "chi2", float(result.statistic), float(result.pvalue)))
    return found


def decide(
    reference: dict[str, Any],
    current: dict[str, Any],
    class_shares: dict[str, float],
    predicted: Any,
    false_alarm_rate: float,
) -> DriftDecision:
    """Test ``current`` (feature -> values) and ``predicted`` (class names) against the reference.

    ``reference`` maps each feature to the training values, ``class_shares`` each class to
    its share of the model's predictions on the training rows. The threshold of every
    test is ``false_alarm_rate`` divided by the number of tests run.
    """
    raw = _raw_tests(reference, current, class_shares, predicted)
    threshold = false_alarm_rate / len(raw) if raw else false_alarm_rate
    tests = [
        TestResult(column, test, statistic, p_value, threshold, p_value < threshold)
        for column, test, statistic, p_value in raw
    ]
    return DriftDecision(tests, features_tested=len(current))
