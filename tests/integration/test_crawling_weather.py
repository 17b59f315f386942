"""The `crawling_weather` DAG under dag.test() on a model repo clone, against the fake KMA.

Connection `kma_api` points at the fake; the key must reach the stage and nothing else:
not the task logs, the rendered template fields, raw files, outputs, DVC cache/remote or
git history.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from batchserving.core.names import WEATHER_LOCK
from batchserving.weather.fake_kma import FakeKma
from tests.conftest import git, tree_digest
from tests.integration.dagrun import rendered_fields, run_dag, task_states

DATA_BRANCH = "data/weather"  # where the weather pipeline's versions are committed

# 05:45 UTC is 14:45 KST: the 14:30 issuance is out.
LOGICAL_DATE = datetime(2026, 11, 25, 5, 45, tzinfo=UTC)
# A key made for this test only, in the old Decoding form (so it has an Encoding form too).
KEY = f"{secrets.token_hex(12)}+{secrets.token_hex(12)}/{secrets.token_hex(8)}=="
KEY_SPELLINGS = (KEY, quote(KEY, safe=""), quote(KEY), KEY[:24], KEY[-20:-2])


@pytest.fixture
def kma_conn(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKma]:
    with FakeKma(key=KEY) as fake:
        conn = {"conn_type": "http", "host": fake.base_url, "password": KEY}
        monkeypatch.setenv("AIRFLOW_CONN_KMA_API", json.dumps(conn))
        yield fake


def weather_files(repo: Path) -> dict[str, str]:
    """Every file under output/weather -> its sha256 (raw, history, latest, state)."""
    return tree_digest(repo / "output" / "weather")


def files_containing_key(root: Path) -> list[str]:
    """Files under ``root`` (outputs, DVC cache and remote, git's loose files) naming the key."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(s.encode() in data for s in KEY_SPELLINGS):
                found.append(str(path))
    return found


def test_hourly_run_stores_commits_and_never_leaks_the_key(
    airflow_db, model_repo: Path, kma_conn: FakeKma, capfd: pytest.CaptureFixture
) -> None:
    head = git(model_repo, "rev-parse", "HEAD").strip()
    dagrun = run_dag("crawling_weather", logical_date=LOGICAL_DATE)
    logs = capfd.readouterr()
    assert task_states(dagrun) == {
        "fetch": "success",
        "preprocess": "success",
    }, logs.out[-3000:] + logs.err[-3000:]

    # The run's time, converted to KST, chose the 14:30 issuance.
    assert kma_conn.requests[0]["base_date"] == "20261125"
    assert kma_conn.requests[0]["base_time"] == "1430"
    files = weather_files(model_repo)
    assert {"raw/202611251430.json", "history/20261125.parquet", "latest/202611.parquet"} <= set(
        files
    )
    assert "state.json" in files

    # A new data version on data/weather, with both stages in its lock; main is untouched.
    assert git(model_repo, "rev-parse", "HEAD").strip() == head
    log = git(model_repo, "log", "--first-parent", "--format=%H %s", DATA_BRANCH, "--not", head)
    assert len(log.splitlines()) == 2 and "crawling_weather" in log
    lock = git(model_repo, "show", f"{DATA_BRANCH}:{WEATHER_LOCK}")
    assert "fetch_weather:" in lock and "preprocess_weather:" in lock
    assert (model_repo / WEATHER_LOCK).read_text() == lock  # the workspace is at that version
    assert git(model_repo, "ls-files", "--", WEATHER_LOCK) == ""  # never tracked on main

    # The key: not in the task logs, rendered fields, files or history.
    assert "fetch_weather: issuance 202611251430" in logs.out + logs.err  # logs were captured
    for spelling in KEY_SPELLINGS:
        assert spelling not in logs.out + logs.err
    stored = rendered_fields("crawling_weather")
    assert "WEATHER_RUN_AT" in stored and "2026-11-25T14:45:00+09:00" in stored
    assert not any(s in stored for s in KEY_SPELLINGS)
    assert files_containing_key(model_repo) == []
    history = git(model_repo, "log", "-p", "--all")
    assert not any(s in history for s in KEY_SPELLINGS)

    # Re-running the same logical date: same issuance, same files, no new commit.
    commit = git(model_repo, "rev-parse", DATA_BRANCH).strip()
    again = run_dag("crawling_weather", logical_date=LOGICAL_DATE)
    assert set(task_states(again).values()) == {"success"}
    assert weather_files(model_repo) == files
    assert git(model_repo, "rev-parse", DATA_BRANCH).strip() == commit
    assert git(model_repo, "rev-parse", "HEAD").strip() == head


def test_missing_connection_fails_saying_to_add_it(
    airflow_db, model_repo: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_KMA_API", raising=False)
    dagrun = run_dag("crawling_weather", logical_date=LOGICAL_DATE)
    logs = capfd.readouterr()
    assert task_states(dagrun)["fetch"] == "failed"
    assert "connection 'kma_api' is not configured" in logs.out + logs.err
    assert "airflow connections add kma_api" in logs.out + logs.err
    assert not (model_repo / "output" / "weather").exists()


def tables_events(run_id: str) -> list[dict]:
    """The extras of the kma-forecast-tables events of one run."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        return [
            event.extra
            for event in session.query(AssetEvent).order_by(AssetEvent.id)
            if event.source_run_id == run_id and event.asset.name == "kma-forecast-tables"
        ]


def test_a_broken_raw_file_is_quarantined_and_named_not_a_failed_run(
    airflow_db, model_repo: Path, kma_conn: FakeKma, capfd: pytest.CaptureFixture
) -> None:
    raw = model_repo / "output/weather/raw/202611251330.json"
    raw.parent.mkdir(parents=True)
    raw.write_bytes(b'{"service": "getUltraSrtFcst", "items": [{"category": "T1H", ')  # cut short
    dagrun = run_dag("crawling_weather", logical_date=LOGICAL_DATE)
    logs = capfd.readouterr()
    assert task_states(dagrun) == {"fetch": "success", "preprocess": "success"}, (
        logs.out[-3000:] + logs.err[-3000:]
    )
    assert "quarantined 202611251330: 202611251330.json: not a raw issuance file" in logs.out
    assert not raw.exists()
    (kept,) = (model_repo / "output/weather/quarantine").glob("202611251330.*.json")
    assert kept.read_bytes().startswith(b'{"service": "getUltraSrtFcst", "items": [{')
    (extra,) = tables_events(dagrun.run_id)
    assert extra["quarantined"] == ["202611251330"] and extra["latest_issuance"] == "202611251430"
    # Versioned: the quarantined bytes are pinned by the committed weather/dvc.lock.
    lock = git(model_repo, "show", f"{DATA_BRANCH}:{WEATHER_LOCK}")
    assert "output/weather/quarantine" in lock
