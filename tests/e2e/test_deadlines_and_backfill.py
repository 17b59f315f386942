"""Deadline alerts and a backfill of ``batch_inference`` under a real scheduler and triggerer.

A server of its own: ``batch_inference``'s deadline is 2 s after a run is queued (set
through the one place, ``batchserving_dags.deadlines``, by the DAG processor's
environment), so every run of it is late; Slack is a local fake receiver. The scheduler
makes no scheduled run (``use_job_schedule`` off): only the runs below happen.

1. ``model_selection`` puts a model in prod, in a run for a past day's 00:30 KST: made
   after 02:00 KST of that day, it is late from the start and alerts once (the shipped
   value, no override).
2. Six runs of ``batch_inference`` for the six logical dates of 30 minutes, triggered
   together as a person triggers runs for dates: one at a time, the later ones are late,
   and each late one alerts once; a run done in time does not; all succeed.
3. Their prediction files are deleted, then ``airflow backfill create`` for those 30
   minutes (the README's command, re-running the dates that ran): six runs, and the same
   files again, byte for byte, because the sample is seeded by the logical date.
4. A backfill of the 30 minutes before, which never ran: six new runs, each file's rows
   naming the backfill run that wrote them.
"""

from __future__ import annotations

import csv
import hashlib
import secrets
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from batchserving.core.params import InferenceParams
from batchserving.core.results import read_result
from dags.batchserving_dags.pool import POOL, POOL_DESCRIPTION, POOL_SLOTS
from scripts.airflow_server import AirflowServer
from scripts.airflow_settings import AIRFLOW
from tests.conftest import snapshot_project
from tests.fakes.slack import SlackReceiver

DEADLINE_SECONDS = 2
# model_selection's scheduled time on a past day: its deadline (02:00 KST) is long gone.
SELECTION_DATE = datetime(2026, 6, 1, 0, 30, tzinfo=ZoneInfo("Asia/Seoul"))
SELECTION_RUN = "for_20260601T0030"
# Six 5-minute marks: 30 minutes of batch_inference, in the past, after its start_date.
FIRST = datetime(2026, 6, 1, 9, 0, tzinfo=ZoneInfo("Asia/Seoul"))
LOGICAL_DATES = [FIRST + timedelta(minutes=5 * i) for i in range(6)]
RUN_TIMEOUT = 600
# After the last run: long enough for a second alert of the same deadline to show up.
QUIET_SECONDS = 15
DEADLINE_MARK = ":alarm_clock: Deadline missed"


@dataclass
class Late:
    server: AirflowServer
    repo: Path
    slack: SlackReceiver


@pytest.fixture(scope="module")
def late(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Late]:
    """The server with a short batch_inference deadline, and a model in prod."""
    root = tmp_path_factory.mktemp("deadlines")
    repo = snapshot_project(root / "model-repo")
    with ExitStack() as stack:
        slack = stack.enter_context(SlackReceiver())
        url = slack.url.replace("/T0/B0/X", f"/TDL/BDL/{secrets.token_hex(12)}")
        server = AirflowServer(
            home=root / "airflow-home",
            model_repo=repo,
            extra_env={
                "BATCHSERVING_BATCH_INFERENCE_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            },
        )
        stack.callback(server.stop)
        server.start()
        server.rest.add_pool(POOL, POOL_SLOTS, POOL_DESCRIPTION)
        server.rest.add_connection("my_webhook", "slackwebhook", password=url)
        server.rest.wait_for_dags({"model_selection", "batch_inference"})
        for dag_id in ("model_selection", "batch_inference"):
            server.rest.unpause(dag_id)
        run_id = server.rest.trigger("model_selection", SELECTION_RUN, logical_date=SELECTION_DATE)
        run = server.rest.wait_for_runs({"model_selection": run_id}, RUN_TIMEOUT)
        assert run["model_selection"]["state"] == "success", server.diagnostics()
        yield Late(server, repo, slack)


def deadline_texts(slack: SlackReceiver) -> list[str]:
    return [text for text in slack.texts if text.startswith(DEADLINE_MARK)]


def prediction_file(late: Late, run_id: str) -> Path:
    """The file the run's predict task wrote (the path in its result)."""
    xcom = late.server.rest.api(
        "GET",
        f"/dags/batch_inference/dagRuns/{run_id}/taskInstances/predict/xcomEntries/return_value",
    )
    return late.repo / read_result(xcom["value"], "predict")["path"]


def digests(paths: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def batch_runs(late: Late) -> dict[datetime, dict]:
    """batch_inference's runs by logical date."""
    runs = late.server.rest.runs("batch_inference")
    return {datetime.fromisoformat(r["logical_date"]): r for r in runs if r["logical_date"]}


@pytest.fixture(scope="module")
def triggered(late: Late) -> dict[str, dict]:
    """The six runs for the six dates, triggered at once, all finished: run_id -> run."""
    run_ids = [
        late.server.rest.trigger("batch_inference", f"for_{date:%Y%m%dT%H%M}", logical_date=date)
        for date in LOGICAL_DATES
    ]
    finished = {}
    for run_id in run_ids:  # one DAG: wait for each in turn (max_active_runs=1)
        run = late.server.rest.wait_for_runs({"batch_inference": run_id}, RUN_TIMEOUT)
        finished[run_id] = run["batch_inference"]
    time.sleep(QUIET_SECONDS)
    return finished


def missed_deadlines(server: AirflowServer) -> dict[str, str]:
    """run_id -> deadline time (UTC) of every deadline the scheduler found missed. A run done in
    time has none left: the scheduler deletes its deadline when the run succeeds."""
    with sqlite3.connect(server.db_path) as db:
        rows = db.execute(
            "SELECT r.run_id, d.deadline_time FROM deadline d"
            " JOIN dag_run r ON r.id = d.dagrun_id WHERE d.missed"
        ).fetchall()
    return dict(rows)


def test_a_late_run_alerts_once_and_its_outcome_is_unchanged(late: Late, triggered) -> None:
    assert len(triggered) == len(LOGICAL_DATES)
    for run_id, run in triggered.items():
        assert run["state"] == "success", (run_id, late.server.diagnostics())
        states = {
            t["task_id"]: t["state"]
            for t in late.server.rest.task_instances("batch_inference", run_id)
        }
        assert states == {"predict": "success"}, (run_id, states)
    missed = missed_deadlines(late.server)
    # Queued together, one at a time: the later ones wait well past 2 s.
    late_runs = [run_id for run_id in triggered if run_id in missed]
    assert len(late_runs) >= 3, (missed, triggered)
    texts = deadline_texts(late.slack)
    for run_id, run in triggered.items():
        alerts = [t for t in texts if f"run `{run_id}`" in t]
        if run_id not in missed:  # done in time: no alert
            assert alerts == [], (run_id, alerts)
            continue
        assert len(alerts) == 1, (run_id, texts)  # late: exactly one, naming it
        assert "dag `batch_inference`" in alerts[0]
        assert f"not done {DEADLINE_SECONDS} s after it was queued" in alerts[0]
        deadline = datetime.fromisoformat(missed[run_id]).replace(tzinfo=UTC)  # stored in UTC
        assert datetime.fromisoformat(run["end_date"]) > deadline, (run, deadline)
    # One more, model_selection's, and no other: no deadline alerted twice.
    assert len(texts) == len(late_runs) + 1, texts
    assert not [t for t in late.slack.texts if "failed" in t.lower()], late.slack.texts


def test_model_selection_not_done_by_two_alerts_once_and_succeeds(late: Late, triggered) -> None:
    run = late.server.rest.api("GET", f"/dags/model_selection/dagRuns/{SELECTION_RUN}")
    assert run["state"] == "success"
    alerts = [t for t in deadline_texts(late.slack) if f"run `{SELECTION_RUN}`" in t]
    assert len(alerts) == 1, deadline_texts(late.slack)
    assert "dag `model_selection`" in alerts[0] and "not done by 02:00 Korean time" in alerts[0]
    assert "(deadline 2026-06-01 02:00:00+09:00)" in alerts[0], alerts[0]


# SQLite answers "database is locked" when the scheduler writes between the command's reads
# and its inserts. Airflow then deletes the half-made backfill (models/backfill.py,
# _cleanup_partial_backfill), or, when that clean-up is locked out too, the scheduler
# completes it: once the runs it made are done, or after two minutes if it made none. So
# the README says: once no backfill of the DAG is running, run it again. PostgreSQL waits.
SQLITE_LOCKED = "database is locked"
NOTHING_LEFT = "No runs to create"  # again, after a half-made backfill that made them all
BACKFILL_ATTEMPTS = 3


def backfills(late: Late) -> list[dict]:
    made = late.server.rest.api("GET", "/backfills", params={"dag_id": "batch_inference"})
    return made["backfills"]


def create_backfill(late: Late, dates: list[datetime], *options: str) -> None:
    """The README's `airflow backfill create`; when SQLite was locked, as the README says:
    again, once no backfill of the DAG is running (dates already run are left alone)."""
    for attempt in range(BACKFILL_ATTEMPTS):
        result = subprocess.run(
            [
                AIRFLOW, "backfill", "create", "--dag-id", "batch_inference",
                "--from-date", dates[0].isoformat(), "--to-date", dates[-1].isoformat(),
                "--max-active-runs", "1", *options,
            ],
            env=late.server.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        if result.returncode == 0 or (attempt and NOTHING_LEFT in result.stderr):
            return
        assert SQLITE_LOCKED in result.stderr, result.stderr[-3000:]
        late.server.rest.wait(
            lambda: all(b["completed_at"] for b in backfills(late)),
            RUN_TIMEOUT,
            "the locked backfill to be removed or completed",
        )
    pytest.fail(
        f"`airflow backfill create` was locked {BACKFILL_ATTEMPTS} times: {result.stderr[-500:]}"
    )


def backfill(late: Late, dates: list[datetime], *options: str) -> dict:
    """The README's `airflow backfill create` for ``dates`` (first to last), run to the end."""
    create_backfill(late, dates, *options)
    created = max(backfills(late), key=lambda b: b["id"])
    late.server.rest.wait(
        lambda: late.server.rest.api("GET", f"/backfills/{created['id']}")["completed_at"],
        RUN_TIMEOUT,
        "the backfill to complete",
    )
    return created


def test_a_backfill_of_30_minutes_writes_the_same_files_byte_for_byte(
    late: Late, triggered
) -> None:
    files = [prediction_file(late, run_id) for run_id in triggered]
    assert len(set(files)) == len(LOGICAL_DATES)
    before = digests(files)
    for path in files:  # lost: the backfill must write them again
        path.unlink()
    backfill(late, LOGICAL_DATES, "--reprocess-behavior", "completed")
    runs = batch_runs(late)
    ours = [runs[date] for date in LOGICAL_DATES]
    assert {r["run_type"] for r in ours} == {"backfill"}, ours
    assert all(r["state"] == "success" for r in ours), ours
    assert sorted(r["dag_run_id"] for r in ours) == sorted(triggered)
    assert all(path.exists() for path in files), "the backfill did not write every file again"
    assert digests(files) == before


def test_a_backfill_of_dates_that_never_ran_names_its_runs_in_the_rows(late: Late) -> None:
    earlier = [date - timedelta(minutes=30) for date in LOGICAL_DATES]
    n_samples = InferenceParams.load(late.repo / "params.yaml").n_samples
    backfill(late, earlier)
    runs = batch_runs(late)
    ours = [runs[date] for date in earlier]
    assert all(r["state"] == "success" and r["run_type"] == "backfill" for r in ours), ours
    for run in ours:
        assert run["dag_run_id"].startswith("backfill__"), run
        with prediction_file(late, run["dag_run_id"]).open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == n_samples, run
        assert {row["run_id"] for row in rows} == {run["dag_run_id"]}
