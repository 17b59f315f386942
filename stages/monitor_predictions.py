"""Stage ``monitor_predictions``: a KST day of served predictions, checked and reported.

    MONITOR_DAY=2026-03-01 dvc repro monitoring/dvc.yaml

Gets every worker's prediction files of the day from the DVC remote
(``batchserving.serving.shared``), reads the day's files
(``batchserving.monitoring.days``), tests them against the training data of the version
that served each row, joins the labels that exist and writes, each file atomically:
``<out-dir>/<day>/report.html`` (the report, with its pictures) and ``summary.json``
(everything, the alert's text included), the latest day's metrics (``--metrics``, for
``dvc metrics``) and the day's row of the history (``--history``, for ``dvc plots``; a
re-run of a day replaces its row). A day without predictions is a success ("no data"). A bad
``MONITOR_DAY`` or params.yaml exits with one line and writes nothing.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

from batchserving.core.atomic import write_json, write_text
from batchserving.core.names import (
    MONITORING_DIR,
    MONITORING_HISTORY,
    MONITORING_METRICS,
    PREDICTIONS_DIR,
)
from batchserving.core.params import MonitoringParams, ParamsError, SelectionParams
from batchserving.monitoring.day import monitor_day
from batchserving.monitoring.days import DayError, parse_day
from batchserving.monitoring.reference import RegistryReferences
from batchserving.monitoring.report import render
from batchserving.monitoring.summary import HISTORY_COLUMNS, history_row, metrics, summarise
from batchserving.registry.git import RegistryError
from batchserving.serving.shared import fetch_served_day

DAY_ENV = "MONITOR_DAY"
# One row a day: years of history are a few hundred KB.
MAX_HISTORY_BYTES = 8 << 20


def updated_history(path: Path, row: dict[str, Any]) -> str:
    """The history CSV with the day's row added or replaced, in day order."""
    rows: dict[str, dict[str, Any]] = {}
    if path.is_file():
        if path.stat().st_size > MAX_HISTORY_BYTES:
            raise ValueError(f"{path} is larger than {MAX_HISTORY_BYTES} bytes; trim it")
        for old in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
            if list(old) == HISTORY_COLUMNS:
                rows[old["day"]] = old
    rows[row["day"]] = row
    out = io.StringIO()
    writer = csv.DictWriter(out, HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows[day] for day in sorted(rows))
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions-dir", default=PREDICTIONS_DIR)
    parser.add_argument("--out-dir", default=MONITORING_DIR)
    parser.add_argument("--metrics", default=MONITORING_METRICS)
    parser.add_argument("--history", default=MONITORING_HISTORY)
    args = parser.parse_args()
    try:
        day = parse_day(os.environ.get(DAY_ENV))
        params = MonitoringParams.load()
        min_score = SelectionParams.load().min_score
        # Every worker's files of the day, not only this one's (batchserving.serving.shared).
        shared = fetch_served_day(Path(), Path(args.predictions_dir), day, params.max_files)
        result = monitor_day(Path(args.predictions_dir), day, params, RegistryReferences(Path()))
        result.skipped.extend(shared.skipped)
        report = Path(args.out_dir) / day.isoformat() / "report.html"
        summary = summarise(result, min_score, params.min_labelled_rows, str(report))
        page = render(result, summary)
        history = updated_history(Path(args.history), history_row(summary))
    except (ParamsError, DayError, ValueError, RegistryError) as exc:
        sys.exit(f"monitor_predictions: {exc}; nothing was written")
    write_text(report, page)
    write_json(report.with_name("summary.json"), summary)
    write_json(args.metrics, metrics(summary))
    write_text(args.history, history)
    drift = summary["drift"]
    print(
        f"monitor_predictions: {day} (KST): {summary['status']}, {summary['rows']} rows in "
        f"{summary['files']} files ({len(summary['skipped'])} skipped; {len(shared.fetched)} "
        f"fetched from the remote), drift "
        f"{'detected in ' + ', '.join(drift['columns']) if drift['detected'] else 'not detected'}"
        f", accuracy {summary['accuracy']}; report {report}",
        flush=True,
    )


if __name__ == "__main__":
    main()
