"""Batch inference: score Iris features with the deployed model, with lineage on every row.

Two modes, one scoring function:

- Scheduled (DAG ``batch_inference``): ``python -m stages.predict --logical-date ISO --run-id ID``
  draws ``inference.n_samples`` Iris rows seeded from the logical date (same date, same rows,
  same file) and writes ``output/predictions/<YYYY-MM-DD>/<YYYY-MM-DDTHH-MM-SSZ>.csv`` (UTC).
- Large batch: ``python -m stages.predict --input PATH --output PATH`` scores a CSV or Parquet
  file of any size in chunks of ``inference.chunk_rows`` rows, so memory stays bounded. Reading,
  scoring and writing overlap in three threads (tree prediction and Arrow I/O release the GIL).

Output columns: the input's columns in their order (extra columns are kept and passed through
unchanged; CSV extras as text), then ``predicted_class``, ``probability`` (of that class),
``model_version``, ``model_commit``, ``run_id``. Lineage comes from ``output/serving/model.json``,
read together with the model (``read_deployment`` checks the md5). Never dvc, never git.
The class and lineage columns are dictionary-encoded in memory and in Parquet (pandas reads
them as ``category``); in CSV they are plain text.

Every output is written to a temp file beside the target and renamed at the end, so a failed or
killed run leaves no partial file at the target. Exit codes: 0 done, 99 nothing deployed (the
DAG task is skipped), 1 bad input, broken deployment or bad params.

Heavy libraries are imported inside functions: the scheduled run's wall time is dominated by
loading the model, and this module adds as little as possible to it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stages.atomic import atomic_path
from stages.iris import FEATURES
from stages.params import ParamsError, load_section, require
from stages.serving import SERVING_DIR, NothingDeployed, read_deployment

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
PREDICTIONS_DIR = "output/predictions"
EXIT_NOTHING_DEPLOYED = 99  # BashOperator's skip_on_exit_code
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
# sklearn's trees score in float32: a larger finite value would become inf and fail there.
FLOAT32_MAX = 3.4028234663852886e38
# What counts as a missing feature value in a CSV (pandas' defaults, minus odd ones).
MISSING_MARKERS = ["", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "<NA>"]


class InputError(ValueError):
    """The input file cannot be scored (format, missing column, bad value)."""


class ModelLoadError(RuntimeError):
    """The deployed model file passed the md5 check but cannot be loaded as a classifier."""


@dataclass(frozen=True)
class InferenceParams:
    """The ``inference`` section of params.yaml, validated."""

    n_samples: int
    chunk_rows: int
    n_jobs: int


@dataclass(frozen=True)
class Lineage:
    """What every output row says about where its prediction came from."""

    model_version: str
    model_commit: str
    run_id: str


def parse_inference_params(section: dict[str, Any]) -> InferenceParams:
    """Validate the ``inference`` section; raise ParamsError naming the key and allowed values."""
    return InferenceParams(
        n_samples=require(
            section,
            "inference",
            "n_samples",
            int,
            "an integer from 1 to 100000",
            lambda v: 1 <= v <= 100_000,
        ),
        chunk_rows=require(
            section,
            "inference",
            "chunk_rows",
            int,
            "an integer from 1000 to 10000000",
            lambda v: 1_000 <= v <= 10_000_000,
        ),
        n_jobs=require(
            section,
            "inference",
            "n_jobs",
            int,
            "an integer >= 1 (threads used by the forest's predict)",
            lambda v: v >= 1,
        ),
    )


def load_model(model_path: Path, n_jobs: int = 1) -> Any:
    """Unpickle the deployed classifier; raise ModelLoadError with the reason if it cannot be."""
    import joblib

    try:
        model = joblib.load(model_path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing
        raise ModelLoadError(
            f"cannot load the deployed model {model_path} ({type(exc).__name__}: {exc}); "
            "redeploy with `make redeploy` or run model_selection"
        ) from None
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        raise ModelLoadError(
            f"{model_path} holds a {type(model).__name__}, not a fitted classifier; "
            "redeploy with `make redeploy` or run model_selection"
        )
    if hasattr(model, "n_jobs"):
        model.n_jobs = n_jobs
    return model


def sample_seed(logical_date: datetime) -> int:
    """The sampling seed of a run: its logical date as whole seconds since the epoch (UTC)."""
    return int(logical_date.timestamp())


def sample_features(n_samples: int, logical_date: datetime) -> pd.DataFrame:
    """``n_samples`` rows of the Iris features, the same rows for the same logical date.

    Rows come from the copy of Iris bundled with scikit-learn (no download, and never the
    training workspace); drawn without replacement up to the 150 rows Iris has.
    """
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_iris

    data = load_iris().data
    rng = np.random.default_rng(sample_seed(logical_date))
    rows = rng.choice(len(data), size=n_samples, replace=n_samples > len(data))
    return pd.DataFrame(data[rows], columns=FEATURES)


def prediction_path(logical_date: datetime, root: Path = Path(PREDICTIONS_DIR)) -> Path:
    """``<root>/<YYYY-MM-DD>/<YYYY-MM-DDTHH-MM-SSZ>.csv`` for a logical date, in UTC."""
    utc = logical_date.astimezone(UTC)
    return root / f"{utc:%Y-%m-%d}" / f"{utc:%Y-%m-%dT%H-%M-%SZ}.csv"


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


def score_table(model: Any, features: Any, passthrough: pa.Table, lineage: Lineage) -> pa.Table:
    """Scored rows: ``passthrough`` (the input's columns), then prediction and lineage columns.

    ``predicted_class`` is exactly ``model.predict`` (the class with the highest
    probability) and ``probability`` is that class's ``predict_proba``.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    # A DataFrame with the training column names, as the model was fitted on.
    proba = model.predict_proba(pd.DataFrame(features, columns=FEATURES, copy=False))
    best = np.argmax(proba, axis=1)
    n = len(best)
    # Class and lineage columns are dictionary-encoded: a few bytes a row instead of a copy
    # of the same strings (40-character commit, run id) in every row of every chunk in flight.
    classes = pa.array([str(c) for c in model.classes_], type=pa.string())
    one_value = pa.array(np.zeros(n, dtype=np.int8))
    columns = {
        "predicted_class": pa.DictionaryArray.from_arrays(pa.array(best.astype(np.int32)), classes),
        "probability": pa.array(proba[np.arange(n), best]),
        **{
            name: pa.DictionaryArray.from_arrays(one_value, pa.array([value], pa.string()))
            for name, value in (
                ("model_version", lineage.model_version),
                ("model_commit", lineage.model_commit),
                ("run_id", lineage.run_id),
            )
        },
    }
    for name, column in columns.items():
        passthrough = passthrough.append_column(name, column)
    return passthrough


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


class _TableWriter:
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


def score_file(
    model: Any, input_path: Path, output_path: Path, lineage: Lineage, chunk_rows: int
) -> int:
    """Score ``input_path`` into ``output_path`` chunk by chunk; return the number of rows.

    The output appears only when every row is scored; on any error nothing is left behind
    (and an existing file at ``output_path`` is left as it was).
    """
    from concurrent.futures import ThreadPoolExecutor

    fmt = output_format(output_path)
    chunks = read_chunks(input_path, chunk_rows)
    rows = 0
    with (
        atomic_path(output_path) as tmp,
        ThreadPoolExecutor(1, "predict-read") as read_pool,
        ThreadPoolExecutor(1, "predict-write") as write_pool,
    ):
        writer = _TableWriter(tmp, fmt)
        # Read the next chunk and write the previous one while this one is scored; at most
        # one write waits, so memory stays about four chunks whatever the input size.
        next_chunk = read_pool.submit(next, chunks, None)
        writes: deque = deque()
        last_schema = None
        while (chunk := next_chunk.result()) is not None:
            next_chunk = read_pool.submit(next, chunks, None)
            table = score_table(model, chunk.features, chunk.passthrough, lineage)
            last_schema = table.schema
            rows += table.num_rows
            writes.append(write_pool.submit(writer.write, table))
            while len(writes) > 1:
                writes.popleft().result()
        for write in writes:
            write.result()
        writer.close(last_schema or output_schema(input_path))
    return rows


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


def write_sample_predictions(
    model: Any, n_samples: int, logical_date: datetime, lineage: Lineage, target: Path
) -> int:
    """Score the seeded sample of a logical date and write it atomically (CSV or Parquet)."""
    import pyarrow as pa

    features = sample_features(n_samples, logical_date)
    array = check_features(features, 1)
    passthrough = pa.table({c: pa.array(array[:, i]) for i, c in enumerate(FEATURES)})
    table = score_table(model, array, passthrough, lineage)
    with atomic_path(target) as tmp:
        writer = _TableWriter(tmp, output_format(target))
        writer.write(table)
        writer.close(table.schema)
    return table.num_rows


def parse_logical_date(text: str) -> datetime:
    """An ISO 8601 timestamp with a timezone (as Airflow renders ``logical_date``)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 timestamp, e.g. 2026-01-01T00:05:00+00:00"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no timezone; add +00:00 or Z")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logical-date", type=parse_logical_date, default=None)
    parser.add_argument("--run-id", default="", help="written in the run_id column")
    parser.add_argument("--input", default="", help="CSV or Parquet file to score (large batch)")
    parser.add_argument("--output", default="", help="where to write (.csv or .parquet)")
    parser.add_argument("--serving-dir", default=SERVING_DIR)
    args = parser.parse_args(argv)
    logical_date = args.logical_date or datetime.now(UTC).replace(microsecond=0)
    run_id = args.run_id or f"manual__{logical_date.isoformat()}"

    try:
        params = parse_inference_params(load_section("inference"))
        deployment = read_deployment(Path(args.serving_dir))
        model = load_model(deployment.model_path, params.n_jobs)
    except NothingDeployed as exc:
        print(f"predict: skipped: {exc}", file=sys.stderr)
        return EXIT_NOTHING_DEPLOYED
    except (ParamsError, RuntimeError) as exc:  # DeploymentError, ModelLoadError
        print(f"predict: {exc}", file=sys.stderr)
        return 1
    record = deployment.record
    lineage = Lineage(str(record["version"]), str(record["commit"]), run_id)
    print(f"predict: model {lineage.model_version} (commit {lineage.model_commit}), run {run_id}")

    output = Path(args.output) if args.output else prediction_path(logical_date)
    started = time.perf_counter()
    try:
        if args.input:
            rows = score_file(model, Path(args.input), output, lineage, params.chunk_rows)
        else:
            rows = write_sample_predictions(model, params.n_samples, logical_date, lineage, output)
    except InputError as exc:
        print(f"predict: bad input: {exc}; no output written", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    print(f"predict: wrote {rows} rows to {output} in {seconds:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
