"""The DAGs' asset events, with the extras a person reads in the UI.

simple_train registers a version (iris-model), model_selection promotes it
(iris-model-prod), batch_inference scores with it (iris-predictions) and
crawling_weather stores an issuance (kma-forecast-raw, kma-forecast-tables).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from batchserving.weather.fake_kma import FakeKma
from tests.conftest import git
from tests.integration.dagrun import load_dag, run_dag, task_states

pytestmark = pytest.mark.usefixtures("airflow_db")

WEATHER_DATE = datetime(2026, 11, 25, 5, 45, tzinfo=UTC)  # 14:45 KST: issuance 14:30


def asset_events(run_ids: set[str]) -> list[dict]:
    """The asset events of these runs (the DB is shared by the session's tests)."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        return [
            {
                "asset": event.asset.name,
                "task": f"{event.source_dag_id}.{event.source_task_id}",
                "extra": event.extra,
            }
            for event in session.query(AssetEvent).order_by(AssetEvent.id)
            if event.source_run_id in run_ids
        ]


def events_of(name: str, run_ids: set[str]) -> list[dict]:
    return [e for e in asset_events(run_ids) if e["asset"] == name]


def test_each_dag_declares_and_emits_its_assets_with_extras(
    model_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inference = load_dag("batch_inference")
    assert [a.name for a in inference.get_task("predict").inlets] == ["iris-model-prod"]

    runs = set()
    for dag_id in ("simple_train", "model_selection", "batch_inference"):
        dagrun = run_dag(dag_id)
        assert dagrun.state == "success", (dag_id, task_states(dagrun))
        runs.add(dagrun.run_id)
    commit = git(model_repo, "rev-list", "-n1", "iris-model@v0.0.1").strip()
    metrics = json.loads(git(model_repo, "show", f"{commit}:metrics.json"))

    versions = events_of("iris-model", runs)
    assert [e["task"] for e in versions] == [
        "simple_train.register_model",
        "model_selection.register_model",
    ]
    assert versions[0]["extra"]["new"] is True and versions[1]["extra"]["new"] is False
    for event in versions:
        assert event["extra"]["version"] == "v0.0.1"
        assert event["extra"]["commit"] == commit
        assert len(event["extra"]["model_md5"]) == 32
        assert event["extra"]["metrics"]["f1_macro"] == metrics["f1_macro"]

    (prod,) = events_of("iris-model-prod", runs)
    assert prod["task"] == "model_selection.promote"
    assert prod["extra"]["version"] == "v0.0.1" and prod["extra"]["commit"] == commit
    assert prod["extra"]["model_md5"] == versions[0]["extra"]["model_md5"]

    (predictions,) = events_of("iris-predictions", runs)
    assert predictions["task"] == "batch_inference.predict"
    assert predictions["extra"]["model_version"] == "v0.0.1"
    assert predictions["extra"]["rows"] == 5
    assert (model_repo / predictions["extra"]["path"]).is_file()

    with FakeKma() as kma:
        conn = {"conn_type": "http", "host": kma.base_url, "password": kma.key}
        monkeypatch.setenv("AIRFLOW_CONN_KMA_API", json.dumps(conn))
        weather = run_dag("crawling_weather", logical_date=WEATHER_DATE)
    assert weather.state == "success", task_states(weather)
    runs.add(weather.run_id)
    (raw,) = events_of("kma-forecast-raw", runs)
    assert raw["extra"]["issuance"] == "202611251430"
    assert raw["extra"]["commit"] == git(model_repo, "rev-parse", "data/weather~1").strip()
    (tables,) = events_of("kma-forecast-tables", runs)
    assert tables["extra"]["latest_issuance"] == "202611251430"
    assert tables["extra"]["issuances"] == 1
    assert tables["extra"]["commit"] == git(model_repo, "rev-parse", "data/weather").strip()
