"""A month of weather, then one hourly run on fresh workspaces: it pulls only what it needs.

The month is made in bulk by the code an hourly run uses, on a worker's workspace: 720 raw
issuances written as fetch_weather writes them, processed by the stage's code, sealed,
recorded on ``data/weather`` and published. Then the next hour's run (fetch, then
preprocess, each the task's command on a brand-new worker) against the fake KMA.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from batchserving.core.names import WEATHER_DIR, WEATHER_PIPELINE, WEATHER_RAW_DIR
from batchserving.registry.dataref import record_version
from batchserving.registry.publish import data_pipeline
from batchserving.registry.sync import publish
from batchserving.registry.workspace import ensure_workspace
from batchserving.weather.fake_kma import FakeKma
from batchserving.weather.issuance import KST, Issuance
from batchserving.weather.seal import OPEN_DAYS, seal
from batchserving.weather.store import update
from benchmarks.weather import write_raw
from tests.conftest import git, run
from tests.integration.test_any_worker import PUBLISH_WEATHER, Cluster

KEY = "month-test-key"
FIRST = Issuance(datetime(2024, 12, 20, 0, 30, tzinfo=KST))  # the month crosses a month's end
HOURS = 30 * 24


def files(root: Path, pattern: str) -> list[Path]:
    return sorted(root.rglob(pattern)) if root.is_dir() else []


def a_month_published(cluster: Cluster, month: list[Issuance], monkeypatch) -> None:
    """The month's raw files processed, sealed, recorded and published from workspace seed."""
    for name, value in cluster.env("seed").items():
        monkeypatch.setenv(name, value)
    seed = ensure_workspace()
    for issuance in month:
        write_raw(seed / WEATHER_RAW_DIR, issuance)
    update(seed / WEATHER_RAW_DIR, seed / WEATHER_DIR)
    run(["dvc", "commit", "--force", "--quiet", WEATHER_PIPELINE], cwd=seed)
    assert seal(seed)
    weather = data_pipeline("weather")
    record_version(seed, weather, "a month")
    publish(seed, set(), weather)


def test_a_run_after_a_month_pulls_one_partition_and_the_tables_keep_every_issuance(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    month = [Issuance(FIRST.at + timedelta(hours=n)) for n in range(HOURS)]
    with monkeypatch.context() as patched:
        a_month_published(cluster, month, patched)

    run_at = (FIRST.at + timedelta(hours=HOURS, minutes=20)).isoformat()
    env = {"KMA_SERVICE_KEY": KEY, "WEATHER_RUN_AT": run_at}
    with FakeKma(key=KEY) as kma:
        cluster.task("fetch", *PUBLISH_WEATHER, "fetch_weather", KMA_BASE_URL=kma.base_url, **env)
    cluster.task("preprocess", *PUBLISH_WEATHER, "preprocess_weather")
    newest = Issuance(FIRST.at + timedelta(hours=HOURS)).name
    first_open = datetime.strptime(newest[:8], "%Y%m%d") - timedelta(days=OPEN_DAYS - 1)
    first_open_day = first_open.strftime("%Y%m%d")

    # What the fresh preprocess worker pulled and holds: the open days alone.
    worker = cluster.root / "preprocess" / WEATHER_DIR
    raw = [p.stem for p in files(worker / "raw", "*.json")]
    assert newest in raw and len(raw) <= OPEN_DAYS * 24
    assert min(raw)[:8] >= first_open_day
    assert {p.stem for p in files(worker / "history", "*.parquet")} <= {
        (first_open + timedelta(days=d)).strftime("%Y%m%d") for d in range(OPEN_DAYS)
    }
    # No sealed day came down: the only sealed files are the day this run sealed itself.
    day_sealed = (first_open - timedelta(days=1)).strftime("%Y%m%d")
    assert {p.parent.name for p in files(worker / "sealed" / "raw", "*.json")} == {day_sealed}
    assert [p.stem for p in files(worker / "sealed" / "history", "*")] == [day_sealed]
    state = json.loads((worker / "state.json").read_text(encoding="utf-8"))
    assert len(state["done"]) <= OPEN_DAYS * 24 and state["sealed_before"] == first_open_day
    cache = files(cluster.root / "preprocess" / ".dvc" / "cache", "*")
    # The open days' raw files and tables, and their directory manifests: not the month's.
    assert len([p for p in cache if p.is_file()]) <= OPEN_DAYS * 24 + 30

    # The data version names every sealed day, and a person's full pull has every issuance.
    sealed = git(cluster.server, "ls-tree", "-r", "--name-only", "data/weather", "weather/sealed")
    days = {Path(p).stem for p in sealed.split() if p.startswith("weather/sealed/raw/")}
    assert days == {i.base_date for i in month if i.base_date < first_open_day}
    assert "weather/sealed/latest/202412.dvc" in sealed.split()
    reader = cluster.every_weather_day()
    out = reader / WEATHER_DIR
    history = pd.concat(
        [pd.read_parquet(out / "history"), pd.read_parquet(out / "sealed" / "history")]
    )
    issued = set(history["baseDate"] + history["baseTime"])
    assert issued == {i.name for i in month} | {newest}
    assert len(history) == len(issued) * 60  # no issuance counted twice
    raw_all = files(out / "raw", "*.json") + files(out / "sealed" / "raw", "*.json")
    assert sorted(p.stem for p in raw_all) == sorted(issued)
