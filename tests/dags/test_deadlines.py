"""Deadline alerts: batch_inference late after it was queued, model_selection by 02:00 KST.

The values are ``batchserving_dags.deadlines``'s; the DAG processor's environment may
change them (the e2e test makes one short), and a bad value is a one-line import error.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from batchserving import DAGS_FOLDER

BATCH_INFERENCE_ENV = "BATCHSERVING_BATCH_INFERENCE_DEADLINE_SECONDS"
MODEL_SELECTION_ENV = "BATCHSERVING_MODEL_SELECTION_DONE_BY"
DEADLINES_ENV = "BATCHSERVING_DEADLINES"
CALLBACK = "dags.batchserving_dags.alerts.deadline_alert"
# Parse one DAG file as the DAG processor does and print its deadline (or the import error).
PARSE = """
import sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
path = Path(sys.argv[1])
bag = BundleDagBag(dag_folder=path, bundle_path=path.parent)
for error in bag.import_errors.values():
    print("RESULT ERROR", error.strip().splitlines()[-1])
for dag in bag.dags.values():
    for alert in dag.deadline:
        reference, seconds = type(alert.reference).__name__, alert.interval.total_seconds()
        print("RESULT", reference, seconds, alert.callback.path, alert.callback.kwargs["missed"])
"""


@pytest.fixture
def deadlines(monkeypatch: pytest.MonkeyPatch):
    """The helper module, imported as the DAG files import it (the dags folder on sys.path)."""
    import importlib

    monkeypatch.syspath_prepend(str(DAGS_FOLDER))
    module = importlib.import_module("batchserving_dags.deadlines")
    names = (module.BATCH_INFERENCE_ENV, module.MODEL_SELECTION_ENV, module.DEADLINES_ENV)
    assert names == (BATCH_INFERENCE_ENV, MODEL_SELECTION_ENV, DEADLINES_ENV)
    return module


def parsed_deadline(dag_file: str, env: dict[str, str] | None = None) -> str:
    import os

    result = subprocess.run(
        [sys.executable, "-c", PARSE, str(DAGS_FOLDER / dag_file)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    return "\n".join(line.removeprefix("RESULT ") for line in lines)


def test_batch_inference_is_late_five_minutes_after_it_was_queued() -> None:
    assert parsed_deadline("03-batch-inference.py") == (
        f"DagRunQueuedAtDeadline 300.0 {CALLBACK} not done 5 min after it was queued"
    )


def test_model_selection_is_late_if_not_done_by_two_in_the_morning() -> None:
    # Scheduled at 00:30 KST: its logical date is then, and 02:00 is 90 minutes later.
    assert parsed_deadline("02-model-selection.py") == (
        f"DagRunLogicalDateDeadline 5400.0 {CALLBACK} not done by 02:00 Korean time"
    )


def test_the_environment_sets_a_shorter_deadline() -> None:
    out = parsed_deadline("03-batch-inference.py", {BATCH_INFERENCE_ENV: "2"})
    assert out == f"DagRunQueuedAtDeadline 2.0 {CALLBACK} not done 2 s after it was queued"
    out = parsed_deadline("02-model-selection.py", {MODEL_SELECTION_ENV: "06:15"})
    assert out.startswith(f"DagRunLogicalDateDeadline {5 * 3600 + 45 * 60}.0 ")


def test_make_run_parses_the_dags_without_deadline_alerts() -> None:
    """`airflow dags test` crashes on a DAG with a deadline: make run leaves them out."""
    for dag_file in ("02-model-selection.py", "03-batch-inference.py"):
        assert parsed_deadline(dag_file, {DEADLINES_ENV: "off"}) == "", dag_file
    makefile = (DAGS_FOLDER.parent / "Makefile").read_text(encoding="utf-8")
    assert f"{DEADLINES_ENV}=off $(AIRFLOW_ENV) airflow dags test" in makefile


@pytest.mark.parametrize(
    ("dag_file", "name", "value", "message"),
    [
        ("03-batch-inference.py", DEADLINES_ENV, "maybe", "give on or off"),
        ("03-batch-inference.py", BATCH_INFERENCE_ENV, "-5", "give whole seconds from 1 to"),
        ("03-batch-inference.py", BATCH_INFERENCE_ENV, "5m; rm -rf /" * 50, "whole seconds"),
        ("02-model-selection.py", MODEL_SELECTION_ENV, "25:00", "give a time of day as HH:MM"),
    ],
)
def test_a_bad_value_is_a_one_line_import_error(dag_file, name, value, message) -> None:
    out = parsed_deadline(dag_file, {name: value})
    assert out.startswith("ERROR ValueError: ") and message in out, out
    assert name in out and value not in out  # names the setting, never echoes the value
    assert len(out.splitlines()) == 1


@pytest.mark.parametrize(
    ("schedule", "done_by", "interval"),
    [
        ("30 0 * * *", "02:00", timedelta(minutes=90)),
        ("45 23 * * *", "02:00", timedelta(hours=2, minutes=15)),  # the next morning
        ("0 2 * * *", "02:00", timedelta(days=1)),  # due when it starts: the next day's
    ],
)
def test_done_by_counts_from_the_daily_start(deadlines, schedule, done_by, interval) -> None:
    assert deadlines.done_by_interval(schedule, done_by) == interval


def test_done_by_needs_a_daily_schedule(deadlines) -> None:
    with pytest.raises(ValueError, match="needs a daily 'M H \\* \\* \\*'"):
        deadlines.done_by_interval("*/5 * * * *", "02:00")
