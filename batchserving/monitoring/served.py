"""Read one prediction file as checked chunks, with the true labels joined where they exist.

A file is read through batch scoring's own reader (``batchserving.serving.tables``: the
features checked, memory bounded by the chunk) and must carry what ``batch_inference``
writes: ``predicted_class`` (a class of Iris), ``model_version`` (``vX.Y.Z``) and
``model_commit`` (40 hex digits) on every row. Anything else is an ``InputError`` naming
the file, the column and the row: the file is then skipped as a whole.

Labels arrive by a join, never from the predictions: a scheduled row's ``iris_row`` is
the key of its label in Iris (the data set the sampler draws from); a large batch's
labels are the file ``<name>.labels.csv`` beside it, with columns ``row`` (the 1-based
data row of the predictions) and ``species``. Rows without a label are served rows all
the same; they count for drift, not for accuracy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchserving.core.names import LABELS_SUFFIX
from batchserving.serving.tables import IRIS_ROW, InputError, read_chunks
from batchserving.training.iris import CLASSES, TARGET

REQUIRED = ("predicted_class", "model_version", "model_commit")
VERSION = re.compile(r"^v\d{1,6}\.\d{1,6}\.\d{1,6}$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
# A labels file is a row number and a class name a line: 1M rows are about 15 MB.
MAX_LABELS_BYTES = 64 << 20
UNKNOWN = ""  # the label of a row whose truth is not known


@dataclass(frozen=True)
class ServedChunk:
    """Rows of one file: features (rows, 4), and per row class, version, commit, truth."""

    features: Any
    predicted: Any
    versions: Any
    commits: Any
    truth: Any


def _text(table: Any, name: str) -> Any:
    """A column as an object array of str (CSV text or Parquet dictionary/string)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(table.column(name), pa.string()).to_numpy(zero_copy_only=False)


def _check(path: Path, name: str, values: Any, valid: Any, first_row: int, what: str) -> None:
    import numpy as np

    bad = np.flatnonzero(~valid)
    if len(bad):
        value = str(values[bad[0]])[:40]
        raise InputError(
            f"{path}: column '{name}', row {first_row + int(bad[0])}: {value!r} is not {what}"
        )


def _matches(pattern: re.Pattern[str], values: Any) -> Any:
    import numpy as np

    return np.fromiter((isinstance(v, str) and bool(pattern.match(v)) for v in values), bool)


def iris_labels() -> Any:
    """Iris' true class names by row: the labels table of the scheduled samples."""
    import numpy as np
    from sklearn.datasets import load_iris

    return np.asarray(CLASSES, dtype=object)[load_iris().target]


def read_labels(path: Path) -> Any | None:
    """The labels beside a large batch (row -> species), or None if there is no such file."""
    import pandas as pd

    labels_path = path.with_name(path.name.rsplit(".", 1)[0] + LABELS_SUFFIX)
    if labels_path.is_symlink() or not labels_path.is_file():
        return None
    if labels_path.stat().st_size > MAX_LABELS_BYTES:
        raise InputError(f"{labels_path}: larger than {MAX_LABELS_BYTES} bytes")
    try:
        frame = pd.read_csv(labels_path, dtype={"row": "int64", TARGET: "string"})
    except (ValueError, OSError) as exc:
        raise InputError(f"{labels_path}: not a labels file ({type(exc).__name__})") from None
    if list(frame.columns) != ["row", TARGET]:
        raise InputError(f"{labels_path}: the columns must be row,{TARGET}")
    if frame["row"].duplicated().any() or not frame[TARGET].isin(CLASSES).all():
        raise InputError(f"{labels_path}: a row is repeated or a species is not an Iris class")
    return frame.set_index("row")[TARGET].astype(object)


def _truth(path: Path, chunk: Any, table: Any, labels: Any, iris: Any) -> Any:
    import numpy as np

    n = len(chunk.features)
    if IRIS_ROW in table.column_names:
        text = _text(table, IRIS_ROW)
        valid = np.fromiter((bool(v) and v.isdigit() and int(v) < len(iris) for v in text), bool)
        _check(path, IRIS_ROW, text, valid, chunk.first_row, f"an Iris row (0..{len(iris) - 1})")
        return iris[text.astype(np.int64)]
    if labels is not None:
        rows = np.arange(chunk.first_row, chunk.first_row + n)
        return labels.reindex(rows).fillna(UNKNOWN).to_numpy(dtype=object)
    return np.full(n, UNKNOWN, dtype=object)


def read_served(path: Path, chunk_rows: int, iris: Any) -> Iterator[ServedChunk]:
    """The checked chunks of a prediction file; InputError on the first bad value."""
    import numpy as np

    labels = read_labels(path)
    for chunk in read_chunks(path, chunk_rows, scored=True):
        table = chunk.passthrough
        missing = [name for name in REQUIRED if name not in table.column_names]
        if missing:
            raise InputError(
                f"{path}: no column '{missing[0]}': not a prediction file of batch_inference"
            )
        predicted, versions, commits = (_text(table, name) for name in REQUIRED)
        first = chunk.first_row
        known = np.isin(predicted, CLASSES)
        _check(path, "predicted_class", predicted, known, first, "an Iris class")
        _check(path, "model_version", versions, _matches(VERSION, versions), first, "vX.Y.Z")
        _check(path, "model_commit", commits, _matches(COMMIT, commits), first, "a git commit")
        truth = _truth(path, chunk, table, labels, iris)
        yield ServedChunk(chunk.features, predicted, versions, commits, truth)
