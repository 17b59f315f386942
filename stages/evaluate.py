"""Stage ``evaluate``: score the model on the test rows; write metrics.json and plot data."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import joblib
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from stages.atomic import atomic_open, write_json
from stages.iris import CLASSES, FEATURES, TARGET, load_dataset, split_rows
from stages.params import ParamsError, load_section
from stages.train import parse_train_params

# Metrics are rounded so that metrics.json is byte-identical across platforms and
# small float noise never shows up as a "change" in `dvc metrics diff`.
DIGITS = 6


def score_model(model: Any, test: pd.DataFrame) -> dict[str, Any]:
    """Accuracy, macro F1 and per-class F1 of ``model`` on ``test``."""
    predicted = model.predict(test[FEATURES])
    per_class = f1_score(test[TARGET], predicted, labels=CLASSES, average=None, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(test[TARGET], predicted)), DIGITS),
        "f1_macro": round(
            float(f1_score(test[TARGET], predicted, average="macro", zero_division=0)), DIGITS
        ),
        "f1_per_class": {
            name: round(float(score), DIGITS)
            for name, score in zip(CLASSES, per_class, strict=True)
        },
        "n_test": len(test),
    }


def confusion_rows(model: Any, test: pd.DataFrame) -> pd.DataFrame:
    """One row per test sample (actual, predicted): DVC's confusion template counts them."""
    return pd.DataFrame(
        {"actual": test[TARGET].to_numpy(), "predicted": model.predict(test[FEATURES])}
    )


def feature_importance(model: Any) -> pd.DataFrame:
    """Impurity-based importance of each feature, largest first."""
    frame = pd.DataFrame(
        {
            "feature": FEATURES,
            "importance": [round(float(v), DIGITS) for v in model.feature_importances_],
        }
    )
    return frame.sort_values("importance", ascending=False, kind="stable")


def write_csv(frame: pd.DataFrame, path: str) -> None:
    """Write ``frame`` atomically as CSV without the index."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="output/data/iris.csv")
    parser.add_argument("--model", default="output/model/model.joblib")
    parser.add_argument("--metrics", default="metrics.json")
    parser.add_argument("--plots-dir", default="output/plots")
    args = parser.parse_args()
    try:
        params = parse_train_params(load_section("train"))
    except ParamsError as exc:
        sys.exit(f"evaluate: {exc}")
    _, test = split_rows(load_dataset(args.data), params.test_size, params.random_state)
    model = joblib.load(args.model)
    write_csv(confusion_rows(model, test), f"{args.plots_dir}/confusion.csv")
    write_csv(feature_importance(model), f"{args.plots_dir}/feature_importance.csv")
    write_json(args.metrics, score_model(model, test))


if __name__ == "__main__":
    main()
