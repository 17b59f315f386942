"""Which days the weather store seals, and a sealed day's raw file turning up again."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from batchserving.weather.seal import first_open_day, sealable_days
from batchserving.weather.store import load_state, update
from tests.unit.test_weather_store import write_raw


def names(*days: str) -> list[str]:
    return [f"{day}{hour:02d}30" for day in days for hour in range(24)]


def test_the_newest_two_days_stay_open() -> None:
    assert first_open_day(names("20261123", "20261124", "20261125")[:-5]) == "20261124"
    assert first_open_day([]) is None


def test_a_day_is_sealed_only_once_every_issuance_of_it_is_processed() -> None:
    raw = names("20261122", "20261123", "20261124", "20261125")
    state = {"done": raw[:24] + raw[25:48], "recent": {}, "quarantined": {raw[24]: "x.json"}}
    assert sealable_days(raw, state, "20261124") == ["20261122", "20261123"]
    state["quarantined"] = {}
    # 20261123's first issuance is neither processed nor quarantined: it and later days wait.
    assert sealable_days(raw, state, "20261124") == ["20261122"]


def test_a_raw_file_of_a_sealed_day_is_quarantined_not_merged_twice(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    write_raw(raw, "1430", "2026-11-25T05:45:00+00:00")
    assert update(raw, out) == ["202611251430"]
    state_path = out / "state.json"
    state_path.write_text(
        state_path.read_text().replace('"version"', '"sealed_before": "20261126", "version"')
    )
    write_raw(raw, "1530", "2026-11-25T06:45:00+00:00")
    assert update(raw, out) == []
    assert not (raw / "202611251530.json").exists()
    assert [p.name.split(".")[0] for p in (out / "quarantine").glob("*.json")] == ["202611251530"]
    assert load_state(state_path)["sealed_before"] == "20261126"  # kept by the next state
    assert set(pd.read_parquet(out / "history")["baseTime"]) == {"1430"}
