"""The Iris dataset's schema and the train/test split shared by the stages and selection.

pandas and scikit-learn are imported where they are used, so the schema is cheap to
import (batch inference checks inputs against FEATURES every 5 minutes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

FEATURES: list[str] = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
TARGET = "species"
CLASSES: list[str] = ["setosa", "versicolor", "virginica"]


def load_dataset(path: str) -> pd.DataFrame:
    """Read the prepared Iris CSV (features plus the ``species`` name)."""
    import pandas as pd

    return pd.read_csv(path)


def split_rows(
    data: pd.DataFrame, test_size: float, random_state: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split; the same arguments always give the same rows."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        data, test_size=test_size, random_state=random_state, stratify=data[TARGET]
    )
    return train, test
