"""Stage ``prepare``: write the Iris dataset as a CSV of four features and the species name."""

from __future__ import annotations

import argparse

import pandas as pd
from sklearn.datasets import load_iris

from batchserving.core.atomic import atomic_open
from batchserving.core.names import DATA_PATH
from batchserving.training.iris import CLASSES, FEATURES, TARGET


def iris_frame() -> pd.DataFrame:
    """Iris as shipped with scikit-learn (no download), with readable column names."""
    bunch = load_iris()
    frame = pd.DataFrame(bunch.data, columns=FEATURES)
    frame[TARGET] = [CLASSES[i] for i in bunch.target]
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=DATA_PATH)
    args = parser.parse_args()
    with atomic_open(args.output, "w", encoding="utf-8", newline="") as fh:
        iris_frame().to_csv(fh, index=False, lineterminator="\n")


if __name__ == "__main__":
    main()
