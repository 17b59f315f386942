"""A hung task ends by its execution_timeout: slot freed, repo unchanged, one alert.

The KMA server holds its answer far longer than the fetch task may run. The task's
timeout is shortened on the loaded DAG object (as the DAG processor would load it), so
the product code carries no test hook.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from filelock import FileLock

from batchserving.core.names import LOCK_FILE
from batchserving.weather.fake_kma import FakeKma
from dags.batchserving_dags.pool import POOL
from tests.conftest import git, tree_digest
from tests.integration.dagrun import load_dag, task_states

LOGICAL_DATE = datetime(2026, 11, 25, 5, 45, tzinfo=UTC)  # 14:45 KST
TASK_TIMEOUT = timedelta(seconds=8)
KMA_DELAY = 120.0  # the held answer: far beyond the task's timeout


def repo_state(repo: Path) -> dict:
    """What a run may change: commits, tags, files' status, the outputs (not DVC's .dvc/tmp)."""
    status = ["status", "--porcelain", "--ignored", "--untracked-files=all"]
    return {
        "head": git(repo, "rev-parse", "HEAD"),
        "data": git(repo, "for-each-ref", "refs/heads/data"),  # the data versions
        "tags": git(repo, "tag", "--list"),
        "status": git(repo, *status, "--", ".", ":!.dvc/tmp"),
        "output": tree_digest(repo / "output"),
    }


def rwlock_holders(repo: Path) -> set[int]:
    """Pids DVC's rwlock names as holders (left behind by a process that was killed)."""
    path = repo / ".dvc" / "tmp" / "rwlock"
    return set(map(int, re.findall(r'"pid": (\d+)', path.read_text()))) if path.exists() else set()


def wait_gone(pids: set[int], timeout: float = 30) -> set[int]:
    """Wait until none of ``pids`` exists (killed and reaped); return those still there."""
    deadline = time.monotonic() + timeout
    while (left := {p for p in pids if Path(f"/proc/{p}").exists()}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    return left


def open_slots() -> int:
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    with create_session() as session:
        return Pool.get_pool(POOL, session=session).open_slots(session=session)


def test_hung_fetch_ends_by_its_timeout_frees_the_slot_changes_nothing_and_alerts_once(
    airflow_db, model_repo: Path, slack_receiver, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    with FakeKma(delay=KMA_DELAY) as kma:
        conn = {"conn_type": "http", "host": kma.base_url, "password": kma.key}
        monkeypatch.setenv("AIRFLOW_CONN_KMA_API", json.dumps(conn))
        kma.mode = "timeout"
        before = repo_state(model_repo)

        dag = load_dag("crawling_weather")
        dag.get_task("fetch").execution_timeout = TASK_TIMEOUT
        started = time.monotonic()
        dagrun = dag.test(logical_date=LOGICAL_DATE)
        elapsed = time.monotonic() - started
        logs = capfd.readouterr()

        assert task_states(dagrun) == {"fetch": "failed", "preprocess": "upstream_failed"}
        assert kma.request_count >= 1  # it did hang on the server's answer
        assert elapsed < KMA_DELAY / 2, f"the run took {elapsed:.0f}s: the timeout did not act"
        assert "AirflowTaskTimeout" in logs.out + logs.err
        # Killed, not left running: its process group lets go of the repo lock (each parent
        # first reaps its child, a moment's work), and the dvc process DVC's rwlock names
        # is gone (DVC counts a holder as live while its pid exists).
        with FileLock(model_repo / LOCK_FILE, timeout=10):
            pass
        assert wait_gone(rwlock_holders(model_repo)) == set()
        assert repo_state(model_repo) == before
        assert open_slots() == 1
        assert len(slack_receiver.texts) == 1, slack_receiver.texts
        assert "crawling_weather" in slack_receiver.texts[0]
        assert "`fetch`" in slack_receiver.texts[0]

        # The next run gets the slot and needs no cleanup.
        kma.mode = "ok"
        again = load_dag("crawling_weather").test(logical_date=LOGICAL_DATE)
    assert set(task_states(again).values()) == {"success"}
    assert len(slack_receiver.texts) == 1
    assert git(model_repo, "for-each-ref", "refs/heads/data") != before["data"]
