"""The model's scores on test rows: what ``metrics.json`` holds and what selection compares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchserving.training.iris import CLASSES, FEATURES, TARGET

if TYPE_CHECKING:
    import pandas as pd

# Metrics are rounded so that metrics.json is byte-identical across platforms and
# small float noise never shows up as a "change" in `dvc metrics diff`.
DIGITS = 6


def score_model(model: Any, test: pd.DataFrame) -> dict[str, Any]:
    """Accuracy, macro F1 and per-class F1 of ``model`` on ``test``."""
    return score_predictions(test[TARGET], model.predict(test[FEATURES]))


def score_predictions(truth: Any, predicted: Any) -> dict[str, Any]:
    """The scores of ``score_model`` for predictions already made (one per test row)."""
    from sklearn.metrics import accuracy_score, f1_score

    per_class = f1_score(truth, predicted, labels=CLASSES, average=None, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), DIGITS),
        "f1_macro": round(
            float(f1_score(truth, predicted, average="macro", zero_division=0)), DIGITS
        ),
        "f1_per_class": {
            name: round(float(score), DIGITS)
            for name, score in zip(CLASSES, per_class, strict=True)
        },
        "n_test": len(predicted),
    }
