"""Stage ``evaluate``: score the model on the test rows; write metrics.json and plot data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from batchserving.core.atomic import atomic_open, write_json
from batchserving.core.names import (
    CONFUSION_PLOT,
    DATA_PATH,
    IMPORTANCE_PLOT,
    METRICS_FILE,
    MODEL_PATH,
    PIPELINE_LOCK,
    TRAIN_STAGE,
)
from batchserving.core.params import ParamsError, TrainParams
from batchserving.registry.dvclock import model_hash
from batchserving.registry.git import RegistryError
from batchserving.registry.integrity import load_verified
from batchserving.training.iris import FEATURES, TARGET, load_dataset, split_rows
from batchserving.training.metrics import DIGITS, score_model


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


def load_trained_model(path: Path) -> Any:
    """The model ``train`` wrote, unpickled only if its md5 is the one ``dvc.lock`` records.

    ``dvc repro`` records the train stage's output in ``dvc.lock`` before it runs this
    stage, so the pin is the md5 of what train wrote (or what ``dvc pull`` verified).
    """
    lock = Path(PIPELINE_LOCK)
    pinned = model_hash(lock.read_text(encoding="utf-8")) if lock.is_file() else None
    if pinned is None:
        raise RegistryError(
            f"{PIPELINE_LOCK} pins no {MODEL_PATH}; run `dvc repro {TRAIN_STAGE}` first"
        )
    return load_verified(path, f"the {TRAIN_STAGE} stage's model", pinned)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=DATA_PATH)
    parser.add_argument("--model", default=MODEL_PATH)
    parser.add_argument("--metrics", default=METRICS_FILE)
    parser.add_argument("--confusion", default=CONFUSION_PLOT)
    parser.add_argument("--importance", default=IMPORTANCE_PLOT)
    args = parser.parse_args()
    try:
        params = TrainParams.load()
        model = load_trained_model(Path(args.model))
    except (ParamsError, RegistryError) as exc:
        sys.exit(f"evaluate: {exc}")
    _, test = split_rows(load_dataset(args.data), params.test_size, params.random_state)
    write_csv(confusion_rows(model, test), args.confusion)
    write_csv(feature_importance(model), args.importance)
    write_json(args.metrics, score_model(model, test))


if __name__ == "__main__":
    main()
