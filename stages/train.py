"""Stage ``train``: fit a RandomForest on the training rows of the Iris split."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import joblib
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from stages.atomic import write_with
from stages.iris import FEATURES, TARGET, load_dataset, split_rows
from stages.params import ParamsError, load_section, require


@dataclass(frozen=True)
class TrainParams:
    """The ``train`` section of params.yaml, validated."""

    random_state: int
    n_estimators: int
    max_depth: int | None
    test_size: float


def parse_train_params(section: dict[str, Any]) -> TrainParams:
    """Validate the ``train`` section; raise ParamsError naming the key and allowed values."""
    return TrainParams(
        random_state=require(
            section, "train", "random_state", int, "an integer >= 0", lambda v: v >= 0
        ),
        n_estimators=require(
            section,
            "train",
            "n_estimators",
            int,
            "an integer from 1 to 10000",
            lambda v: 1 <= v <= 10_000,
        ),
        max_depth=require(
            section,
            "train",
            "max_depth",
            (int, type(None)),
            "null (unlimited) or an integer >= 1",
            lambda v: v is None or v >= 1,
        ),
        test_size=require(
            section,
            "train",
            "test_size",
            float,
            "a number strictly between 0 and 1, e.g. 0.3",
            lambda v: 0.0 < v < 1.0,
        ),
    )


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
    parser.add_argument("--data", default="output/data/iris.csv")
    parser.add_argument("--model", default="output/model/model.joblib")
    args = parser.parse_args()
    try:
        params = parse_train_params(load_section("train"))
    except ParamsError as exc:
        sys.exit(f"train: {exc}")
    train, _ = split_rows(load_dataset(args.data), params.test_size, params.random_state)
    model = fit_model(train, params)
    write_with(args.model, lambda tmp: joblib.dump(model, tmp))


if __name__ == "__main__":
    main()
