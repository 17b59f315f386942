"""Stage ``train``: fit a RandomForest on the training rows of the Iris split."""

from __future__ import annotations

import argparse
import sys

import joblib
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from batchserving.core.atomic import write_with
from batchserving.core.names import DATA_PATH, MODEL_PATH
from batchserving.core.params import ParamsError, TrainParams
from batchserving.training.iris import FEATURES, TARGET, load_dataset, split_rows


def fit_model(train: pd.DataFrame, params: TrainParams) -> RandomForestClassifier:
    """Fit the classifier; single-threaded so the result is the same on every machine."""
    model = RandomForestClassifier(
        n_estimators=params.n_estimators,
        max_depth=params.max_depth,
        random_state=params.random_state,
        n_jobs=1,
    )
    model.fit(train[FEATURES], train[TARGET])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=DATA_PATH)
    parser.add_argument("--model", default=MODEL_PATH)
    args = parser.parse_args()
    try:
        params = TrainParams.load()
    except ParamsError as exc:
        sys.exit(f"train: {exc}")
    train, _ = split_rows(load_dataset(args.data), params.test_size, params.random_state)
    model = fit_model(train, params)
    write_with(args.model, lambda tmp: joblib.dump(model, tmp))


if __name__ == "__main__":
    main()
