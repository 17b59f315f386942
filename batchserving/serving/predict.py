"""Batch inference's task command: score Iris features with the deployed model, with lineage.

    python -m batchserving.serving.predict --logical-date ISO --run-id ID

Two modes, one scoring module (``batchserving.serving.scoring``):

- Scheduled (DAG ``batch_inference``): ``--logical-date ISO --run-id ID`` draws
  ``inference.n_samples`` Iris rows seeded from the logical date (same date, same rows,
  same file), each with its position in Iris (``iris_row``, its label's join key), and
  writes ``output/predictions/<YYYY-MM-DD>/<YYYY-MM-DDTHH-MM-SSZ>.csv`` (UTC; an
  asset-triggered run's date, its ``run_after``, keeps its microseconds in the name).
- Large batch: ``--input PATH --output PATH`` scores a CSV or Parquet file of any size in
  chunks of ``inference.chunk_rows`` rows, so memory stays bounded. A person's paths are
  taken as given.
- Run conf (the DAG): ``--run-conf JSON`` takes ``input_path`` and ``output_path`` from a
  trigger's run conf, confined to the model repo and ``output/predictions/``
  (``batchserving.serving.run_conf``) before a byte is read or a folder created.

Output columns: the input's columns in their order (extra columns are kept and passed through
unchanged; CSV extras as text), then ``predicted_class``, ``probability`` (of that class),
``model_version``, ``model_commit``, ``run_id``. Lineage comes from ``output/serving/model.json``,
read together with the model (``read_deployment`` checks the md5), never from dvc or git.

Every output is written to a temp file beside the target and renamed at the end, so a failed or
killed run leaves no partial file at the target. A file under ``output/predictions/`` is then
put on the default DVC remote too, so that the monitor on any worker sees it
(``batchserving.serving.shared``); a remote that fails does not fail the run: the file is
pending, the next run puts it first, and the log says so. Exit codes: 0 done, 99 nothing
deployed (the DAG task is skipped), 1 bad input, broken deployment or bad params.
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
from batchserving.core.results import emit
from batchserving.serving.deployment import NothingDeployed, read_deployment
from batchserving.serving.run_conf import RunConfError, confined_paths, parse_run_conf
from batchserving.serving.scoring import (
    Lineage,
    load_model,
    score_file,
    write_sample_predictions,
)
from batchserving.serving.shared import share_prediction
from batchserving.serving.tables import InputError

EXIT_NOTHING_DEPLOYED = 99  # BashOperator's skip_on_exit_code


def prediction_path(logical_date: datetime, root: Path = Path(PREDICTIONS_DIR)) -> Path:
    """``<root>/<YYYY-MM-DD>/<YYYY-MM-DDTHH-MM-SSZ>.csv`` for a logical date, in UTC.

    A date with microseconds (an asset-triggered run's ``run_after``) keeps them,
    ``...T09-25-00.412000Z.csv``: its file is never a scheduled run's of the same second.
    """
    utc = logical_date.astimezone(UTC)
    fraction = f".{utc:%f}" if utc.microsecond else ""
    return root / f"{utc:%Y-%m-%d}" / f"{utc:%Y-%m-%dT%H-%M-%S}{fraction}Z.csv"


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


def enter_workspace() -> Path:
    """Move into this worker's workspace (made on first use); return it."""
    from batchserving.registry.workspace import ensure_workspace

    repo = ensure_workspace()
    os.chdir(repo)
    return repo


def io_paths(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """Input and output: a run conf's, confined to the repo (the cwd), or a person's as given."""
    if args.run_conf is not None:
        return confined_paths(Path.cwd(), parse_run_conf(args.run_conf))
    return (Path(args.input) if args.input else None), (Path(args.output) if args.output else None)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logical-date", type=parse_logical_date, default=None)
    parser.add_argument("--run-id", default="", help="written in the run_id column")
    paths = parser.add_mutually_exclusive_group()
    paths.add_argument("--input", default="", help="CSV or Parquet file to score (large batch)")
    parser.add_argument("--output", default="", help="where to write (.csv or .parquet)")
    paths.add_argument(
        "--run-conf",
        default=None,
        help="a trigger's run conf (JSON): input_path, output_path, confined to the model repo",
    )
    parser.add_argument("--serving-dir", default=SERVING_DIR)
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="in the workspace, resolve prod from the registry into the serving cache first",
    )
    args = parser.parse_args(argv)
    if args.run_conf is not None and args.output:
        parser.error("--output is taken from the run conf with --run-conf")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logical_date = args.logical_date or datetime.now(UTC).replace(microsecond=0)
    run_id = args.run_id or f"manual__{logical_date.isoformat()}"

    try:
        repo = enter_workspace() if args.refresh else Path.cwd()
        # Before the model: a refused conf reads nothing and creates nothing.
        source, target = io_paths(args)
        if args.refresh:
            from batchserving.serving.resolve import refresh_serving

            refresh_serving(repo)
        params = InferenceParams.load()
        deployment = read_deployment(Path(args.serving_dir))
        model = load_model(deployment, params.n_jobs)
    except NothingDeployed as exc:
        print(f"predict: skipped: {exc}", file=sys.stderr)
        return EXIT_NOTHING_DEPLOYED
    except RunConfError as exc:
        print(f"predict: bad run conf: {exc}", file=sys.stderr)
        return 1
    except (ParamsError, RuntimeError) as exc:  # Deployment, ModelLoad, Registry errors
        print(f"predict: {exc}", file=sys.stderr)
        return 1
    record = deployment.record
    lineage = Lineage(str(record["version"]), str(record["commit"]), run_id)
    print(f"predict: model {lineage.model_version} (commit {lineage.model_commit}), run {run_id}")

    output = target or prediction_path(logical_date)
    started = time.perf_counter()
    try:
        if source:
            rows = score_file(model, source, output, lineage, params.chunk_rows)
        else:
            rows = write_sample_predictions(model, params.n_samples, logical_date, lineage, output)
    except InputError as exc:
        print(f"predict: bad input: {exc}; no output written", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    print(f"predict: wrote {rows} rows to {output} in {seconds:.3f} s")
    shared = share_prediction(repo, output)
    if shared.put:
        print(f"predict: put {', '.join(shared.put)} on the DVC remote, for the monitor")
    if shared.error:  # served all the same: the next run puts what is pending
        print(f"predict: {shared.error}; {shared.pending} file(s) pending", file=sys.stderr)
    emit(
        {
            "path": str(output),
            "rows": rows,
            "shared": shared.put,
            "unshared": shared.pending,
            "model_version": lineage.model_version,
            "model_commit": lineage.model_commit,
            "run_id": run_id,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
