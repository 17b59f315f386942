"""Incremental preprocessing: the hourly run costs the same after a year as after a day.

Builds raw issuances from the fake KMA's generator (no network) in a temp dir, processes
them, and times `preprocess_weather` on one new issuance when 24 are already processed
(1 day) and when 8,760 are (365 days). Figure = cost after a year / cost after a day.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from batchserving.weather.fake_kma import forecast_items
from batchserving.weather.issuance import KST, Issuance
from batchserving.weather.kma import Fetched
from benchmarks.common import Figure
from stages.fetch_weather import raw_record
from stages.preprocess_weather import update

DAY, YEAR = 24, 8_760
SAMPLES = 7


def write_raw(raw_dir: Path, issuance: Issuance) -> None:
    """A raw file as fetch_weather writes it (without its fsync: only the backlog's setup)."""
    items = forecast_items(issuance.base_date, issuance.base_time, 60, 127)
    record = raw_record(Fetched(issuance, issuance, items), datetime(2026, 1, 1, tzinfo=UTC))
    raw_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (raw_dir / f"{issuance.name}.json").write_text(text, encoding="utf-8")


def cost_of_next_issuances(work: Path, history: int) -> float:
    """Median seconds to process one new issuance after ``history`` are processed."""
    raw, out = work / "raw", work / "out"
    first = Issuance(datetime(2025, 1, 1, 0, 30, tzinfo=KST))
    for n in range(history):
        write_raw(raw, Issuance(first.at + timedelta(hours=n)))
    update(raw, out)  # the backlog, once
    times = []
    for n in range(history, history + SAMPLES):
        write_raw(raw, Issuance(first.at + timedelta(hours=n)))
        start = time.perf_counter()
        done = update(raw, out)
        times.append(time.perf_counter() - start)
        assert len(done) == 1, done
    return statistics.median(times)


def main() -> list[Figure]:
    root = Path(tempfile.mkdtemp(prefix="bench-weather-"))
    try:
        day = cost_of_next_issuances(root / "day", DAY)
        year = cost_of_next_issuances(root / "year", YEAR)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return [
        Figure(
            name="weather preprocess: 1 year / 1 day of history",
            value=year / day,
            target=1.5,
            detail=f"one new issuance: {year * 1000:.1f} ms after {YEAR:,}, "
            f"{day * 1000:.1f} ms after {DAY}",
        )
    ]
