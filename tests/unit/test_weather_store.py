"""The incremental table store (batchserving.weather.store) on real files in a temp dir."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from batchserving.weather.fake_kma import forecast_items
from batchserving.weather.store import update
from batchserving.weather.tables import RawFileError


def write_raw(raw_dir: Path, base_time: str, fetched_at: str, t1h: str | None = None) -> Path:
    """A raw issuance file of 2026-11-25 ``base_time``; every T1H set to ``t1h`` if given."""
    items = forecast_items("20261125", base_time, 60, 127)
    for item in items:
        if t1h is not None and item["category"] == "T1H":
            item["fcstValue"] = t1h
    raw_dir.mkdir(parents=True, exist_ok=True)
    path = raw_dir / f"20261125{base_time}.json"
    path.write_text(json.dumps({"items": items, "fetched_at": fetched_at}), encoding="utf-8")
    return path


def tables(out_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out_dir)): p.read_bytes() for p in out_dir.rglob("*.parquet")}


def test_a_refetch_with_new_values_is_reprocessed_and_wins(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    write_raw(raw, "1330", "2026-11-25T04:45:00+00:00")
    write_raw(raw, "1430", "2026-11-25T05:45:00+00:00")
    assert update(raw, out) == ["202611251330", "202611251430"]

    write_raw(raw, "1430", "2026-11-25T06:00:00+00:00", t1h="-7")
    assert update(raw, out) == ["202611251430"]
    latest = pd.read_parquet(out / "latest").set_index("fcstTime")
    # The re-fetched later issuance wins each of its hours (15..19 are forecast by both).
    assert latest.loc[["1500", "1600", "1700", "1800", "1900", "2000"], "T1H"].eq(-7.0).all()
    assert latest.loc["1400", "issuance"] == "202611251330"  # only the earlier forecasts 14:00
    history = pd.read_parquet(out / "history")
    assert len(history) == 2 * 60  # the re-fetch replaced its rows, added none


def test_a_touched_file_with_the_same_bytes_is_not_reprocessed(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    path = write_raw(raw, "1430", "2026-11-25T05:45:00+00:00")
    assert update(raw, out) == ["202611251430"]
    before = tables(out)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert update(raw, out) == []
    assert tables(out) == before


def test_a_state_file_of_another_version_is_refused_until_a_rebuild(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    write_raw(raw, "1430", "2026-11-25T05:45:00+00:00")
    out.mkdir()
    (out / "state.json").write_text('{"version": 0, "done": [], "recent": {}}', encoding="utf-8")
    with pytest.raises(RawFileError, match=r"not a state file of version 1; run with --rebuild"):
        update(raw, out)
    assert tables(out) == {}  # nothing written on the failed run
    assert update(raw, out, rebuild=True) == ["202611251430"]
    assert json.loads((out / "state.json").read_text(encoding="utf-8"))["version"] == 1
