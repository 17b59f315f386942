"""The Iris dataset's schema and the train/test split shared by train, evaluate and selection."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

FEATURES: list[str] = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
TARGET = "species"
CLASSES: list[str] = ["setosa", "versicolor", "virginica"]


def load_dataset(path: str) -> pd.DataFrame:
    """Read the prepared Iris CSV (features plus the ``species`` name)."""
    return pd.read_csv(path)


def split_rows(
    data: pd.DataFrame, test_size: float, random_state: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split; the same arguments always give the same rows."""
    train, test = train_test_split(
        data, test_size=test_size, random_state=random_state, stratify=data[TARGET]
    )
    return train, test
