"""``monitor_predictions`` through Airflow's ``dag.test()`` on one promoted model repo.

The repo has v0.0.1 registered, in prod and deployed by the real pipeline; each test
writes a KST day of scheduled predictions with ``scripts/served_day.py`` (the model
scores the samples batch inference draws, optionally shifted), runs the DAG for it as
``make run DAG=monitor_predictions DATE=<day>`` does (logical date: the next day's 01:00
KST) and checks the report, the metrics, the data version, the asset event and Slack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pendulum
import pytest

from batchserving import PROJECT_ROOT
from tests.conftest import PROMOTE, git, last_line, locked_task, snapshot_project
from tests.integration.dagrun import run_dag, task_states
from tests.integration.test_assets import events_of

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A promoted model repo shared by this module's tests, exported as MODEL_REPO."""
    with pytest.MonkeyPatch.context() as patch:
        repo = snapshot_project(tmp_path_factory.mktemp("monitoring") / "model-repo")
        patch.setenv("MODEL_REPO", str(repo))
        python = ("python", "-m")
        locked_task(repo, *python, "batchserving.registry.publish", "evaluate")
        locked_task(repo, *python, "batchserving.registry.register")
        compared = locked_task(repo, *python, "batchserving.selection.compare").stdout
        locked_task(repo, *PROMOTE, last_line(compared))
        yield repo


def serve_day(repo: Path, day: str, *options: str) -> None:
    """A whole day of scheduled predictions written by the deployed model."""
    subprocess.run(
        [sys.executable, "-m", "scripts.served_day", "--day", day, *options],
        cwd=PROJECT_ROOT,
        env={**os.environ, "MODEL_REPO": str(repo)},
        check=True,
        capture_output=True,
        timeout=120,
    )


def monitor(day: str):
    """Run the DAG for a KST day, with the logical date `make run DATE=<day>` gives it."""
    following = date.fromisoformat(day) + timedelta(days=1)
    logical = pendulum.datetime(following.year, following.month, following.day, 1, tz="Asia/Seoul")
    return run_dag("monitor_predictions", logical, run_after=logical)


def summary(repo: Path, day: str) -> dict:
    return json.loads((repo / "output/monitoring" / day / "summary.json").read_text())


def test_an_ordinary_day_flags_no_drift_and_sends_no_alert(repo: Path, slack_receiver) -> None:
    serve_day(repo, "2026-03-01")
    main_before = git(repo, "rev-parse", "HEAD").strip()
    dagrun = monitor("2026-03-01")

    assert task_states(dagrun) == {"monitor": "success"}
    day = summary(repo, "2026-03-01")
    assert (day["status"], day["files"], day["rows"]) == ("monitored", 288, 1440)
    assert day["drift"]["detected"] is False and day["drift"]["share"] == 0.0
    assert len(day["drift"]["tests"]) == 5  # 4 features and the predicted classes
    assert day["labelled_rows"] == 1440 and day["accuracy"] >= 0.9
    assert day["alert"] is None
    assert slack_receiver.texts == []
    # Recorded as a data version on data/monitoring, never on main: the lock, the metrics
    # and the history DVC reads, committed there as they are in the workspace.
    metrics = json.loads((repo / "monitoring/metrics.json").read_text())
    assert metrics["day"] == "2026-03-01" and metrics["versions"] == {"v0.0.1": 1440}
    assert git(repo, "rev-parse", "HEAD").strip() == main_before
    assert git(repo, "ls-files", "--", "monitoring") == "monitoring/dvc.yaml\n"
    for path in ("monitoring/dvc.lock", "monitoring/metrics.json", "monitoring/history.csv"):
        assert git(repo, "show", f"data/monitoring:{path}") == (repo / path).read_text(), path
    [event] = events_of("iris-monitoring", {dagrun.run_id})
    assert event["extra"]["day"] == "2026-03-01"
    assert event["extra"]["drift_share"] == 0.0 and event["extra"]["versions"] == {"v0.0.1": 1440}
    assert event["extra"]["commit"] == git(repo, "rev-parse", "data/monitoring").strip()


def test_a_day_of_shifted_petal_lengths_is_flagged_with_one_alert(
    repo: Path, slack_receiver
) -> None:
    serve_day(repo, "2026-03-02", "--shift", "petal_length=1.5")
    # As on a fresh workspace (a sync's `git clean` removes them too: main tracks none of
    # them): the history of days must come back from the data version, not start again.
    for path in ("monitoring/dvc.lock", "monitoring/metrics.json", "monitoring/history.csv"):
        (repo / path).unlink()
    dagrun = monitor("2026-03-02")

    assert task_states(dagrun) == {"monitor": "success"}
    day = summary(repo, "2026-03-02")
    assert day["drift"]["detected"] is True
    by_column = {t["column"]: t for t in day["drift"]["tests"]}
    assert by_column["petal_length"]["drifted"] is True
    assert not any(by_column[f]["drifted"] for f in ("sepal_length", "sepal_width", "petal_width"))
    [text] = slack_receiver.texts
    assert "petal_length" in text and "2026-03-02" in text
    assert "output/monitoring/2026-03-02/report.html" in text
    report = (repo / "output/monitoring/2026-03-02/report.html").read_text()
    assert "petal_length: <b class=drift>drift detected</b>" in report
    assert "sepal_width: no drift" in report and "<svg" in report
    history = git(repo, "show", "data/monitoring:monitoring/history.csv").splitlines()
    assert [line.split(",")[0] for line in history] == ["day", "2026-03-01", "2026-03-02"]
    assert (repo / "monitoring/history.csv").read_text().splitlines() == history


def test_a_day_without_predictions_succeeds_with_no_data_and_no_alert(
    repo: Path, slack_receiver
) -> None:
    dagrun = monitor("2026-04-01")

    assert task_states(dagrun) == {"monitor": "success"}
    day = summary(repo, "2026-04-01")
    assert (day["status"], day["rows"], day["alert"]) == ("no data", 0, None)
    assert slack_receiver.texts == []


def test_an_unreadable_file_is_named_skipped_and_alerted(repo: Path, slack_receiver) -> None:
    serve_day(repo, "2026-03-03", "--every", "60")  # 24 runs
    broken = repo / "output/predictions/2026-03-03/2026-03-03T03-00-00Z.csv"
    broken.write_bytes(b"\x00\xff not a csv")
    dagrun = monitor("2026-03-03")

    assert task_states(dagrun) == {"monitor": "success"}
    day = summary(repo, "2026-03-03")
    assert [s["file"] for s in day["skipped"]] == [str(broken.relative_to(repo))]
    assert (day["files"], day["rows"]) == (24, 23 * 5)
    [text] = slack_receiver.texts
    assert "1 unreadable prediction file(s) skipped (2026-03-03T03-00-00Z.csv)" in text
