"""Input and output tables of batch scoring: checked chunks in, CSV or Parquet out.

Readers stream a CSV (pyarrow ``open_csv``, every column read as text) or Parquet file
(pyarrow ``iter_batches``) as checked chunks. Nothing is guessed: a CSV line with more or
fewer fields than the header (named by its row), a duplicate column name, a
missing feature column, a feature that is not a number (in Parquet: a column whose type is
not int or float, so bool and timestamp are refused), an empty, NaN or infinite value,
text that is not UTF-8 or a file that is not CSV or Parquet stops the run with a one-line
``InputError`` naming the column and the 1-based data row where there is one. Extra input
columns pass through unchanged (CSV extras as text). ``TableWriter`` streams scored tables
to one file.

Memory is bounded whatever the file holds: a CSV is read in blocks of ``MAX_LINE_BYTES``
(1 MiB), so a longer line (the header too) is refused rather than buffered, and a chunk
ends at ``chunk_rows`` rows or about ``MAX_CHUNK_BYTES`` (64 MiB) of text, whichever
comes first. A Parquet file is read a batch of ``chunk_rows`` rows at a time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchserving.training.iris import FEATURES

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# A scheduled sample's first column: the row's position in Iris (its label's join key).
IRIS_ROW = "iris_row"
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
# A CSV line longer than this is refused: the reader never holds more than a block of it.
MAX_LINE_BYTES = 1 << 20
# A CSV chunk ends at chunk_rows rows or at this much text, so long lines cannot add up.
MAX_CHUNK_BYTES = 64 << 20
# At most this much of a library's message goes into an error line.
MAX_DETAIL_CHARS = 120


class InputError(ValueError):
    """The input file cannot be scored (format, missing column, bad value)."""


def _check_finite(array: Any, first_row: int) -> Any:
    """``array`` (rows, 4 float64) if every value fits the model, else InputError."""
    import numpy as np

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


def check_features(features: pd.DataFrame, first_row: int) -> Any:
    """The features as a float64 array, or InputError naming the column and the row.

    ``first_row`` is the 1-based data row number of ``features``' first row (the header of
    a CSV is not counted). Rejects columns that are not int or float, missing values
    (empty/NaN) and values infinite or too large for the model's float32.
    """
    import numpy as np

    for column in FEATURES:
        kind = features[column].dtype.kind
        if kind not in "iuf":
            raise InputError(
                f"column '{column}' holds {features[column].dtype} values, not numbers "
                "(int or float)"
            )
    return _check_finite(features[FEATURES].to_numpy(dtype=np.float64), first_row)


def _detail(exc: BaseException) -> str:
    """The first line of a library's message, cut to ``MAX_DETAIL_CHARS``, printable only."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return "".join(c if c.isprintable() else "?" for c in lines[0][:MAX_DETAIL_CHARS])


@contextmanager
def _reading(path: Path, what: str) -> Generator[None, None, None]:
    """Turn a reader's failure on a malformed file into one InputError line."""
    import pyarrow as pa

    try:
        yield
    except (pa.ArrowException, OSError, UnicodeError) as exc:
        raise InputError(f"{path}: not a readable {what} file ({_detail(exc)})") from None


@dataclass(frozen=True)
class Chunk:
    """A slice of the input: checked features and the input's columns to pass through."""

    first_row: int
    features: Any  # float64 array (rows, 4)
    passthrough: pa.Table


def _chunk(array: Any, columns: list[str], extras: dict, first_row: int) -> Chunk:
    """One checked slice; the passthrough keeps the input's column order, features float64."""
    import pyarrow as pa

    array = _check_finite(array, first_row)
    passthrough = pa.table(
        {
            name: pa.array(array[:, FEATURES.index(name)]) if name in FEATURES else extras[name]
            for name in columns
        }
    )
    return Chunk(first_row, array, passthrough)


@dataclass
class _Seen:
    """How many data rows the CSV reader has parsed so far (for errors that name no row)."""

    rows: int = 0


@contextmanager
def _reading_csv(path: Path, header: list[str], seen: _Seen) -> Generator[None, None, None]:
    """InputError for a malformed CSV: wrong field count, a too long line, not UTF-8."""
    import pyarrow as pa

    try:
        yield
    except pa.ArrowInvalid as exc:
        message = str(exc)
        # pyarrow's message quotes the whole bad row; only its number and counts are kept.
        # Its "Row #N" counts the header as row 1.
        fields = re.search(r"Row #(\d+): Expected (\d+) columns, got (\d+)", message)
        if fields:
            row, expected, actual = (int(n) for n in fields.groups())
            raise InputError(
                f"{path}: row {row - 1} has {actual} fields, the header has {expected}; "
                "quote values that hold a comma"
            ) from None
        if "straddl" in message:  # pyarrow: a row does not fit in one block
            raise InputError(
                f"{path}: a line after data row {seen.rows} is longer than "
                f"{MAX_LINE_BYTES} bytes, the limit of one CSV line"
            ) from None
        if "UTF8" in message:
            where = _column_of(message, header)
            raise InputError(
                f"{path}: {where}after data row {seen.rows} is not UTF-8 text; save the "
                "file as UTF-8"
            ) from None
        raise InputError(f"{path}: not a readable csv file ({_detail(exc)})") from None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable csv file ({_detail(exc)})") from None


def _column_of(message: str, header: list[str]) -> str:
    """``column 'x' `` from pyarrow's ``In CSV column #N: ...``, or '' if it names none."""
    # pyarrow names the column only by its index in the message of a conversion error.
    match = re.search(r"column #(\d+)", message)
    index = int(match.group(1)) if match else len(header)
    return f"column {header[index][:80]!r} " if index < len(header) else ""


def _open_csv(path: Path, columns: list[str] | None) -> Any:
    """pyarrow's streaming CSV reader: blocks of MAX_LINE_BYTES, every named column as text."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    convert = pcsv.ConvertOptions(
        column_types=dict.fromkeys(columns or [], pa.string()),
        strings_can_be_null=False,  # text stays verbatim; features know "missing" below
        quoted_strings_can_be_null=False,
    )
    return pcsv.open_csv(
        path,
        # One thread: pyarrow then knows each bad row's number.
        read_options=pcsv.ReadOptions(block_size=MAX_LINE_BYTES, use_threads=False),
        convert_options=convert,
    )


def _csv_numbers(column: Any, name: str, first_row: int) -> Any:
    """A CSV feature column (text) as float64, missing markers as NaN; else InputError."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(column.combine_chunks())
    missing = pc.is_in(text, value_set=pa.array(MISSING_MARKERS))
    text = pc.if_else(missing, pa.scalar(None, pa.string()), text)
    try:
        return text.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        pass
    low, high = 0, len(text)  # find the first value that is not a number, by halves
    while high - low > 1:
        middle = (low + high) // 2
        try:
            text.slice(low, middle - low).cast(pa.float64())
            low = middle
        except pa.ArrowInvalid:
            high = middle
    value = text[low].as_py()
    raise InputError(f"column '{name}', row {first_row + low}: {value[:80]!r} is not a number")


def _csv_tables(reader: Any, chunk_rows: int, seen: _Seen) -> Iterator[pa.Table]:
    """The reader's batches regrouped into tables of ``chunk_rows`` rows (or MAX_CHUNK_BYTES)."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    rows = size = 0
    for batch in reader:
        seen.rows += batch.num_rows
        pending.append(batch)
        rows, size = rows + batch.num_rows, size + batch.nbytes
        while rows >= chunk_rows or (size >= MAX_CHUNK_BYTES and rows):
            table = pa.Table.from_batches(pending, reader.schema)
            take = min(rows, chunk_rows)
            yield table.slice(0, take)
            rest = table.slice(take)
            pending, rows = rest.to_batches(), rest.num_rows
            size = rest.nbytes
    if rows:
        yield pa.Table.from_batches(pending, reader.schema)


def read_csv_chunks(path: Path, chunk_rows: int, scored: bool = False) -> Iterator[Chunk]:
    """Checked chunks of a CSV file; extra columns are read as text, exactly as written."""
    import numpy as np

    header = _input_columns(path, scored)
    extras = [c for c in header if c not in FEATURES]
    seen, first_row = _Seen(), 1
    with _reading_csv(path, header, seen):
        reader = _open_csv(path, header)
        for table in _csv_tables(reader, chunk_rows, seen):
            array = np.column_stack(
                [_csv_numbers(table.column(name), name, first_row) for name in FEATURES]
            )
            texts = {c: table.column(c) for c in extras}
            chunk = _chunk(array, header, texts, first_row)
            first_row += table.num_rows
            yield chunk


def _check_text(batch: pa.RecordBatch, name: str, first_row: int) -> Any:
    """A Parquet extra column; a binary one must hold UTF-8 text (the CSV output needs it)."""
    import pyarrow as pa

    column = batch.column(name)
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        try:
            column.cast(pa.string())
        except pa.ArrowInvalid:
            raise InputError(
                f"column {name!r}, rows {first_row}-{first_row + batch.num_rows - 1}: "
                "not UTF-8 text; store text as UTF-8 strings"
            ) from None
    return column


def read_parquet_chunks(path: Path, chunk_rows: int, scored: bool = False) -> Iterator[Chunk]:
    """Checked chunks of a Parquet file, read batch by batch (memory: about a row group)."""
    import pyarrow.parquet as pq

    header = _input_columns(path, scored)
    first_row = 1
    with _reading(path, "parquet"):
        # pre_buffer would read ahead without bound (memory grows with the file's size).
        parquet = pq.ParquetFile(path, pre_buffer=False)
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            if batch.num_rows == 0:
                continue
            array = check_features(batch.select(FEATURES).to_pandas(), first_row)
            extras = {c: _check_text(batch, c, first_row) for c in header if c not in FEATURES}
            chunk = _chunk(array, header, extras, first_row)
            first_row += batch.num_rows
            yield chunk


def _parquet_columns(path: Path) -> list[str]:
    """A Parquet file's column names, its features checked to be int or float."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with _reading(path, "parquet"):
        schema = pq.ParquetFile(path).schema_arrow
    for field in schema:
        if field.name in FEATURES and not (
            pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
        ):
            raise InputError(
                f"{path}: column '{field.name}' is {field.type}, not a number type (int or "
                "float); store the features as numbers"
            )
    return schema.names


def _csv_columns(path: Path) -> list[str]:
    """A CSV file's column names, read from its first block only (MAX_LINE_BYTES)."""
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file; the input needs a header: {','.join(FEATURES)}")
    with _reading_csv(path, [], _Seen()):
        return _open_csv(path, None).schema.names


def _input_columns(path: Path, scored: bool = False) -> list[str]:
    """The input's column names, checked: unique, the features there, no output column.

    ``scored``: the file is scoring's own output (monitoring reads it), so the output
    columns are expected in it.
    """
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    columns = _parquet_columns(path) if parquet else _csv_columns(path)
    shown = ", ".join(columns)[:80] or "none"
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise InputError(
            f"{path}: duplicate column name(s) {', '.join(repr(c[:80]) for c in repeated)}; "
            "give each column its own name"
        )
    missing = [c for c in FEATURES if c not in columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"the input needs {', '.join(FEATURES)} (found: {shown})"
        )
    clash = [c for c in OUTPUT_COLUMNS if c in columns]
    if clash and not scored:
        raise InputError(
            f"{path}: column(s) {', '.join(repr(c) for c in clash)} clash with the output "
            "columns; rename them in the input"
        )
    return columns


def read_chunks(path: Path, chunk_rows: int, scored: bool = False) -> Iterator[Chunk]:
    """Checked chunks of a CSV or Parquet input, chosen by the file's suffix.

    ``scored`` reads a file that scoring wrote (its output columns allowed).
    """
    if not path.is_file():
        raise InputError(f"{path}: no such input file")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return read_csv_chunks(path, chunk_rows, scored)
    if suffix in PARQUET_SUFFIXES:
        return read_parquet_chunks(path, chunk_rows, scored)
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
