"""Batch scoring: seeded sampling, streamed = in-memory predict, bad input named, nothing left."""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from batchserving.serving.scoring import sample_features, score_file, write_sample_predictions
from batchserving.serving.tables import InputError
from batchserving.training.iris import FEATURES
from tests.unit.conftest import DATE, LINEAGE, features


def no_leftovers(directory: Path) -> bool:
    """Nothing but the input files: no output and no temp file."""
    return sorted(p.name for p in directory.iterdir()) == ["input.csv"] or sorted(
        p.name for p in directory.iterdir()
    ) == ["input.parquet"]


def test_sampling_is_seeded_by_the_logical_date(model, tmp_path: Path) -> None:
    first, again = sample_features(5, DATE), sample_features(5, DATE)
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == FEATURES and len(first) == 5
    # Another run gets other rows; the same instant in another timezone is the same run.
    assert not first.equals(sample_features(5, DATE + timedelta(minutes=5)))
    seoul = DATE.astimezone(timezone(timedelta(hours=9)))
    pd.testing.assert_frame_equal(first, sample_features(5, seoul))

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_sample_predictions(model, 5, DATE, LINEAGE, a)
    write_sample_predictions(model, 5, DATE, LINEAGE, b)
    assert a.read_bytes() == b.read_bytes()
    written = pd.read_csv(a)
    assert list(written.columns) == [
        "iris_row",
        *FEATURES,
        "predicted_class",
        "probability",
        "model_version",
        "model_commit",
        "run_id",
    ]
    np.testing.assert_allclose(written[FEATURES].to_numpy(), first.to_numpy())
    # Each row names the Iris row it was drawn from, so its true label can be joined later.
    assert written["iris_row"].tolist() == first.index.tolist()
    np.testing.assert_allclose(
        written[FEATURES].to_numpy(), load_iris().data[written["iris_row"].to_numpy()]
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_streamed_scoring_equals_in_memory_predict(model, tmp_path: Path, fmt: str) -> None:
    data = features(2_500)
    data.insert(2, "sample_id", [f"s-{i:05d}" for i in range(len(data))])  # an extra column
    source = tmp_path / f"input.{fmt}"
    data.to_csv(source, index=False) if fmt == "csv" else data.to_parquet(source)
    target = tmp_path / f"scored.{fmt}"

    rows = score_file(model, source, target, LINEAGE, chunk_rows=1_000)  # 3 chunks

    assert rows == len(data)
    scored = pd.read_csv(target) if fmt == "csv" else pd.read_parquet(target)
    assert list(scored.columns) == [
        *FEATURES[:2],
        "sample_id",
        *FEATURES[2:],
        "predicted_class",
        "probability",
        "model_version",
        "model_commit",
        "run_id",
    ]
    assert scored["sample_id"].tolist() == data["sample_id"].tolist()  # passed through
    np.testing.assert_array_equal(scored[FEATURES].to_numpy(), data[FEATURES].to_numpy())
    assert scored["predicted_class"].tolist() == model.predict(data[FEATURES]).tolist()
    expected_probability = model.predict_proba(data[FEATURES]).max(axis=1)
    np.testing.assert_allclose(scored["probability"].to_numpy(), expected_probability)
    assert set(scored["model_version"]) == {LINEAGE.model_version}
    assert set(scored["model_commit"]) == {LINEAGE.model_commit}
    assert set(scored["run_id"]) == {LINEAGE.run_id}


def test_csv_output_from_parquet_and_empty_input(model, tmp_path: Path) -> None:
    source = tmp_path / "input.parquet"
    features(10).to_parquet(source)
    score_file(model, source, tmp_path / "out.csv", LINEAGE, chunk_rows=1_000)
    assert len(pd.read_csv(tmp_path / "out.csv")) == 10

    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(FEATURES) + "\n")
    assert score_file(model, empty, tmp_path / "empty-out.csv", LINEAGE, 1_000) == 0
    assert pd.read_csv(tmp_path / "empty-out.csv").columns[-1] == "run_id"


def bad_missing_column(data: pd.DataFrame) -> pd.DataFrame:
    return data.drop(columns=["petal_width"])


def bad_text(data: pd.DataFrame) -> pd.DataFrame:
    data["sepal_width"] = data["sepal_width"].astype(str)  # a text column (Parquet too)
    data.loc[1_234, "sepal_width"] = "3,5cm"  # row 1235, in the second chunk
    return data


def bad_nan(data: pd.DataFrame) -> pd.DataFrame:
    data.loc[2_001, "petal_length"] = np.nan  # row 2002, third chunk
    return data


def bad_inf(data: pd.DataFrame) -> pd.DataFrame:
    data.loc[6, "sepal_length"] = np.inf
    return data


def bad_clash(data: pd.DataFrame) -> pd.DataFrame:
    data["probability"] = 0.5
    return data


BAD_INPUTS = {
    "missing column": (bad_missing_column, "missing column(s) 'petal_width'"),
    "non-numeric": (bad_text, "column 'sepal_width', row 1235: '3,5cm' is not a number"),
    "NaN": (bad_nan, "column 'petal_length', row 2002: value is missing (empty or NaN)"),
    "infinite": (bad_inf, "column 'sepal_length', row 7: value inf is not finite"),
    "output column in input": (bad_clash, "column(s) 'probability' clash with the output"),
}


# Parquet features are refused by type: a text column never reaches the values.
PARQUET_MESSAGES = {"non-numeric": "column 'sepal_width' is large_string, not a number type"}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_names_column_and_row_and_leaves_nothing(
    model, tmp_path: Path, case: str, fmt: str
) -> None:
    make_bad, message = BAD_INPUTS[case]
    if fmt == "parquet":
        message = PARQUET_MESSAGES.get(case, message)
    data = make_bad(features(2_500))
    source = tmp_path / f"input.{fmt}"
    if fmt == "csv":
        data.to_csv(source, index=False)
    else:
        data.to_parquet(source)

    with pytest.raises(InputError) as error:
        score_file(model, source, tmp_path / "scored.csv", LINEAGE, chunk_rows=1_000)

    assert message in str(error.value)
    assert no_leftovers(tmp_path), list(tmp_path.iterdir())


def test_bad_input_keeps_an_existing_output(model, tmp_path: Path) -> None:
    target = tmp_path / "scored.csv"
    target.write_text("earlier result\n")
    source = tmp_path / "input.csv"
    bad_nan(features(2_500)).to_csv(source, index=False)
    with pytest.raises(InputError):
        score_file(model, source, target, LINEAGE, chunk_rows=1_000)
    assert target.read_text() == "earlier result\n"
