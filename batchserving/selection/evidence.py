"""Paired evidence that a challenger beats the champion on the same test rows: pure statistics.

Both models predict the same rows, so the comparison is paired: only the *discordant*
rows (one model right, the other wrong) tell the models apart.

- McNemar's exact test: under "no difference" each discordant row is equally likely to
  favour either model, so the challenger-only count is Binomial(discordant, 1/2)
  (``scipy.stats.binomtest``, two-sided).
- Paired bootstrap: the rows are resampled with replacement (seeded, ``RESAMPLES``
  times); on each resample the primary metric of both models is recomputed and the
  percentile interval of the delta (challenger − champion) is taken at ``1 - alpha``.

Only numpy and scipy, no git, files or models: the caller passes the true labels and
both models' predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
import numpy.typing as npt

from batchserving.core.params import PrimaryMetric as Metric
from batchserving.core.params import SelectionTest as Test

TESTS: tuple[Test, ...] = get_args(Test)
METRICS: tuple[Metric, ...] = get_args(Metric)
RESAMPLES = 2000
# A fixed seed: the same rows and predictions always give the same interval.
SEED = 0
DIGITS = 6


@dataclass(frozen=True)
class Evidence:
    """What the gate knows about challenger vs champion on ``n`` shared test rows."""

    test: Test
    alpha: float
    metric: Metric
    n: int
    challenger_only: int
    champion_only: int
    p_value: float
    delta_ci: tuple[float, float]
    # One character per test row, in row order: "1" the model got it right, "0" wrong.
    challenger_outcomes: str
    champion_outcomes: str

    def as_dict(self) -> dict[str, Any]:
        """The ``evidence`` object of the comparison JSON."""
        low, high = self.delta_ci
        return {
            "test": self.test,
            "alpha": self.alpha,
            "metric": self.metric,
            "n": self.n,
            "challenger_only": self.challenger_only,
            "champion_only": self.champion_only,
            "p_value": self.p_value,
            "delta_ci": {"low": low, "high": high, "confidence": round(1 - self.alpha, DIGITS)},
            "bootstrap": {"resamples": RESAMPLES, "seed": SEED, "method": "percentile"},
            "outcomes": {
                "challenger": self.challenger_outcomes,
                "champion": self.champion_outcomes,
            },
        }


def metric_scores(
    metric: Metric, truth: npt.ArrayLike, predicted: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """``metric`` of ``predicted`` against ``truth`` along the last axis (one per resample).

    Macro F1 as scikit-learn computes it (``average="macro"``, ``zero_division=0``): the
    mean F1 over the labels present in the truth or the predictions.
    """
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if metric == "accuracy":
        return np.mean(truth == predicted, axis=-1)
    if metric != "f1_macro":
        raise ValueError(f"no paired evidence for metric {metric!r}; use one of {METRICS}")
    f1_sum = np.zeros(np.broadcast_shapes(truth.shape, predicted.shape)[:-1])
    labels_present = np.zeros_like(f1_sum)
    for label in np.union1d(truth, predicted):
        is_true, is_predicted = truth == label, predicted == label
        true_positives = np.sum(is_true & is_predicted, axis=-1)
        support = np.sum(is_true, axis=-1) + np.sum(is_predicted, axis=-1)
        f1_sum += np.divide(
            2 * true_positives, support, out=np.zeros_like(f1_sum), where=support > 0
        )
        labels_present += support > 0
    return f1_sum / labels_present


def mcnemar_p_value(challenger_only: int, champion_only: int) -> float:
    """Two-sided exact McNemar p-value of the discordant counts (1.0 with none)."""
    from scipy.stats import binomtest

    discordant = challenger_only + champion_only
    if discordant == 0:
        return 1.0
    return float(binomtest(challenger_only, discordant, p=0.5).pvalue)


def delta_interval(
    metric: Metric,
    truth: npt.ArrayLike,
    champion: npt.ArrayLike,
    challenger: npt.ArrayLike,
    confidence: float,
) -> tuple[float, float]:
    """Paired percentile bootstrap interval of challenger − champion ``metric``."""
    from scipy.stats import bootstrap

    def delta(
        rows_truth: np.ndarray, rows_champion: np.ndarray, rows_challenger: np.ndarray, axis: int
    ) -> np.ndarray:
        return metric_scores(metric, rows_truth, rows_challenger) - metric_scores(
            metric, rows_truth, rows_champion
        )

    result = bootstrap(
        (np.asarray(truth), np.asarray(champion), np.asarray(challenger)),
        delta,
        n_resamples=RESAMPLES,
        paired=True,
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(SEED),
    )
    interval = result.confidence_interval
    return round(float(interval.low), DIGITS), round(float(interval.high), DIGITS)


def outcome_string(correct: npt.NDArray[np.bool_]) -> str:
    """Per-row outcomes as "1" (right) / "0" (wrong), in row order."""
    return "".join("1" if ok else "0" for ok in correct)


def gather(
    test: Test,
    alpha: float,
    metric: Metric,
    truth: npt.ArrayLike,
    champion: npt.ArrayLike,
    challenger: npt.ArrayLike,
) -> Evidence:
    """The evidence of ``challenger``'s and ``champion``'s predictions of ``truth``.

    Both statistics are always computed (and shown); ``test`` only names the one the
    rule acts on.
    """
    truth, champion, challenger = (np.asarray(a) for a in (truth, champion, challenger))
    if not truth.ndim == 1 or not truth.shape == champion.shape == challenger.shape:
        raise ValueError(
            f"truth and both predictions must be rows of one length; got shapes "
            f"{truth.shape}, {champion.shape}, {challenger.shape}"
        )
    if truth.size < 2:
        raise ValueError(f"{truth.size} test row(s): the paired tests need at least 2")
    # Class labels as integer codes: the resampling works on plain integer arrays.
    codes = np.unique(np.concatenate([truth, champion, challenger]), return_inverse=True)[1]
    truth, champion, challenger = np.split(codes.astype(np.int64), 3)
    champion_right, challenger_right = champion == truth, challenger == truth
    challenger_only = int(np.sum(challenger_right & ~champion_right))
    champion_only = int(np.sum(champion_right & ~challenger_right))
    return Evidence(
        test=test,
        alpha=alpha,
        metric=metric,
        n=int(truth.size),
        challenger_only=challenger_only,
        champion_only=champion_only,
        p_value=mcnemar_p_value(challenger_only, champion_only),
        delta_ci=delta_interval(metric, truth, champion, challenger, 1 - alpha),
        challenger_outcomes=outcome_string(challenger_right),
        champion_outcomes=outcome_string(champion_right),
    )
