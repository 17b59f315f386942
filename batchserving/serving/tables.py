"""Input and output tables of batch scoring: checked chunks in, CSV or Parquet out.

Readers stream a CSV (pandas ``chunksize``) or Parquet file (pyarrow ``iter_batches``) as
checked chunks: a missing feature column, a non-numeric, empty, NaN or infinite value
stops the run with an error naming the column and the 1-based data row. Extra input
columns pass through unchanged. ``TableWriter`` streams scored tables to one file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchserving.training.iris import FEATURES

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

OUTPUT_COLUMNS: list[str] = [
    "predicted_class",
    "probability",
    "model_version",
    "model_commit",
    "run_id",
]
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
# sklearn's trees score in float32: a larger finite value would become inf and fail there.
FLOAT32_MAX = 3.4028234663852886e38
# What counts as a missing feature value in a CSV (pandas' defaults, minus odd ones).
MISSING_MARKERS = ["", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "<NA>"]


class InputError(ValueError):
    """The input file cannot be scored (format, missing column, bad value)."""


def check_features(features: pd.DataFrame, first_row: int) -> Any:
    """The features as a float64 array, or InputError naming the column and the row.

    ``first_row`` is the 1-based data row number of ``features``' first row (the header of
    a CSV is not counted). Rejects values that are not numbers, missing (empty/NaN) and
    infinite or too large for the model's float32.
    """
    import numpy as np
    import pandas as pd

    for column in FEATURES:
        values = features[column]
        if values.dtype.kind not in "iuf":
            numbers = pd.to_numeric(values, errors="coerce")
            bad = numbers.isna() & values.notna()
            if bad.any():
                pos = int(np.argmax(bad.to_numpy()))
                raise InputError(
                    f"column '{column}', row {first_row + pos}: {values.iloc[pos]!r} is not a "
                    "number"
                )
    array = features[FEATURES].to_numpy(dtype=np.float64)
    ok = np.abs(array) <= FLOAT32_MAX  # False for NaN and inf too
    if not ok.all():
        pos, col = np.argwhere(~ok)[0]
        value = float(array[pos, col])
        if math.isnan(value):
            what = "is missing (empty or NaN)"
        elif math.isinf(value):
            what = f"{value!r} is not finite"
        else:
            what = f"{value!r} is too large for the model (float32)"
        raise InputError(f"column '{FEATURES[col]}', row {first_row + int(pos)}: value {what}")
    return array


@dataclass(frozen=True)
class Chunk:
    """A slice of the input: checked features and the input's columns to pass through."""

    first_row: int
    features: Any  # float64 array (rows, 4)
    passthrough: pa.Table


def _chunk(frame: pd.DataFrame, columns: list[str], extras: dict, first_row: int) -> Chunk:
    """Check one slice; the passthrough keeps the input's column order, features as float64."""
    import pyarrow as pa

    array = check_features(frame, first_row)
    passthrough = pa.table(
        {
            name: pa.array(array[:, FEATURES.index(name)]) if name in FEATURES else extras[name]
            for name in columns
        }
    )
    return Chunk(first_row, array, passthrough)


def read_csv_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """Checked chunks of a CSV file; extra columns are read as text, exactly as written."""
    import pandas as pd
    import pyarrow as pa

    header = _input_columns(path)
    extras = [c for c in header if c not in FEATURES]
    reader = pd.read_csv(
        path,
        chunksize=chunk_rows,
        dtype=dict.fromkeys(extras, str),
        keep_default_na=False,  # extra columns stay verbatim ...
        na_values=dict.fromkeys(FEATURES, MISSING_MARKERS),  # ... features know "missing"
        engine="c",
    )
    first_row = 1
    try:
        for frame in reader:
            if frame.empty:  # a header without rows
                continue
            texts = {c: pa.array(frame[c].to_numpy(dtype=object), pa.string()) for c in extras}
            chunk = _chunk(frame, header, texts, first_row)
            first_row += len(frame)
            yield chunk
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: malformed CSV after row {first_row - 1} ({exc})") from None


def read_parquet_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """Checked chunks of a Parquet file, read batch by batch (memory: about a row group)."""
    import pyarrow.parquet as pq

    header = _input_columns(path)
    # pre_buffer would read ahead without bound (memory grows with the file's size).
    parquet = pq.ParquetFile(path, pre_buffer=False)
    first_row = 1
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        if batch.num_rows == 0:
            continue
        frame = batch.select(FEATURES).to_pandas()
        extras = {c: batch.column(c) for c in header if c not in FEATURES}
        chunk = _chunk(frame, header, extras, first_row)
        first_row += batch.num_rows
        yield chunk


def _input_columns(path: Path) -> list[str]:
    """The input's column names, checked to hold the features and no output column."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            columns = pq.ParquetFile(path).schema_arrow.names
        else:
            columns = pd.read_csv(path, nrows=0).columns.tolist()
    except (pa.ArrowInvalid, OSError, ValueError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable {path.suffix[1:]} file ({exc})") from None
    missing = [c for c in FEATURES if c not in columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"the input needs {', '.join(FEATURES)} (found: {', '.join(columns) or 'none'})"
        )
    clash = [c for c in OUTPUT_COLUMNS if c in columns]
    if clash:
        raise InputError(
            f"{path}: column(s) {', '.join(repr(c) for c in clash)} clash with the output "
            "columns; rename them in the input"
        )
    return columns


def read_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """Checked chunks of a CSV or Parquet input, chosen by the file's suffix."""
    if not path.is_file():
        raise InputError(f"{path}: no such input file")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return read_csv_chunks(path, chunk_rows)
    if suffix in PARQUET_SUFFIXES:
        return read_parquet_chunks(path, chunk_rows)
    raise InputError(f"{path}: unknown input format; use a .csv or .parquet file")


class TableWriter:
    """Streams tables to one CSV or Parquet file; the first table fixes the schema."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt, self.schema, self.sink = path, fmt, None, None

    def write(self, table: pa.Table) -> None:
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        if self.sink is None:
            self.schema = table.schema
            if self.fmt == "csv":
                self.sink = pcsv.CSVWriter(self.path, table.schema)
            else:
                self.sink = pq.ParquetWriter(self.path, table.schema)
        elif table.schema != self.schema:
            table = table.cast(self.schema)
        self.sink.write_table(table)

    def close(self, empty_schema: pa.Schema) -> None:
        if self.sink is None:  # no rows at all: still a valid file with the header
            self.write(empty_schema.empty_table())
        self.sink.close()


def output_format(path: Path) -> str:
    """``csv`` or ``parquet`` from the output file's suffix."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputError(f"{path}: unknown output format; use a .csv or .parquet file")


def output_schema(input_path: Path) -> pa.Schema:
    """The output's schema for an input with a header and no rows (CSV extras are text)."""
    import pyarrow as pa

    fields = [
        pa.field(name, pa.float64() if name in FEATURES else pa.string())
        for name in _input_columns(input_path)
    ]
    fields.append(pa.field("predicted_class", pa.dictionary(pa.int32(), pa.string())))
    fields.append(pa.field("probability", pa.float64()))
    fields.extend(
        pa.field(name, pa.dictionary(pa.int8(), pa.string())) for name in OUTPUT_COLUMNS[2:]
    )
    if input_path.suffix.lower() in PARQUET_SUFFIXES:  # extras keep their Parquet types
        import pyarrow.parquet as pq

        source = pq.ParquetFile(input_path).schema_arrow
        fields = [
            source.field(f.name) if f.name in source.names and f.name not in FEATURES else f
            for f in fields
        ]
    return pa.schema(fields)
