"""Batch inference's task command: score Iris features with the deployed model, with lineage.

    python -m batchserving.serving.predict --logical-date ISO --run-id ID

Two modes, one scoring module (``batchserving.serving.scoring``):

- Scheduled (DAG ``batch_inference``): ``--logical-date ISO --run-id ID`` draws
  ``inference.n_samples`` Iris rows seeded from the logical date (same date, same rows,
  same file) and writes ``output/predictions/<YYYY-MM-DD>/<YYYY-MM-DDTHH-MM-SSZ>.csv`` (UTC).
- Large batch: ``--input PATH --output PATH`` scores a CSV or Parquet file of any size in
  chunks of ``inference.chunk_rows`` rows, so memory stays bounded.

Output columns: the input's columns in their order (extra columns are kept and passed through
unchanged; CSV extras as text), then ``predicted_class``, ``probability`` (of that class),
``model_version``, ``model_commit``, ``run_id``. Lineage comes from ``output/serving/model.json``,
read together with the model (``read_deployment`` checks the md5). Never dvc, never git.

Every output is written to a temp file beside the target and renamed at the end, so a failed or
killed run leaves no partial file at the target. Exit codes: 0 done, 99 nothing deployed (the
DAG task is skipped), 1 bad input, broken deployment or bad params.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from batchserving.core.names import PREDICTIONS_DIR, SERVING_DIR
from batchserving.core.params import InferenceParams, ParamsError
from batchserving.serving.deployment import NothingDeployed, read_deployment
from batchserving.serving.scoring import (
    Lineage,
    load_model,
    score_file,
    write_sample_predictions,
)
from batchserving.serving.tables import InputError

EXIT_NOTHING_DEPLOYED = 99  # BashOperator's skip_on_exit_code


def prediction_path(logical_date: datetime, root: Path = Path(PREDICTIONS_DIR)) -> Path:
    """``<root>/<YYYY-MM-DD>/<YYYY-MM-DDTHH-MM-SSZ>.csv`` for a logical date, in UTC."""
    utc = logical_date.astimezone(UTC)
    return root / f"{utc:%Y-%m-%d}" / f"{utc:%Y-%m-%dT%H-%M-%SZ}.csv"


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


def refresh_in_workspace() -> None:
    """Move into this worker's workspace and refresh its serving cache from the registry."""
    from batchserving.registry.workspace import ensure_workspace
    from batchserving.serving.resolve import refresh_serving

    repo = ensure_workspace()
    os.chdir(repo)
    refresh_serving(repo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logical-date", type=parse_logical_date, default=None)
    parser.add_argument("--run-id", default="", help="written in the run_id column")
    parser.add_argument("--input", default="", help="CSV or Parquet file to score (large batch)")
    parser.add_argument("--output", default="", help="where to write (.csv or .parquet)")
    parser.add_argument("--serving-dir", default=SERVING_DIR)
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="in the workspace, resolve prod from the registry into the serving cache first",
    )
    args = parser.parse_args(argv)
    logical_date = args.logical_date or datetime.now(UTC).replace(microsecond=0)
    run_id = args.run_id or f"manual__{logical_date.isoformat()}"

    try:
        if args.refresh:
            refresh_in_workspace()
        params = InferenceParams.load()
        deployment = read_deployment(Path(args.serving_dir))
        model = load_model(deployment, params.n_jobs)
    except NothingDeployed as exc:
        print(f"predict: skipped: {exc}", file=sys.stderr)
        return EXIT_NOTHING_DEPLOYED
    except (ParamsError, RuntimeError) as exc:  # Deployment, ModelLoad, Registry errors
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
