"""Incremental preprocessing: the hourly run costs the same after a year as after a day.

Builds raw issuances from the fake KMA's generator (no network) in a temp dir, processes
them, and times `preprocess_weather` on one new issuance when 24 are already processed
(1 day) and when 8,760 are (365 days), alternately, one new issuance each. Figure = the
median of the pair ratios (after a year / after a day), so a machine that slows down for
a moment slows both sides of a pair.
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
from batchserving.weather.store import update
from benchmarks.common import Figure
from stages.fetch_weather import raw_record

DAY, YEAR = 24, 8_760
PAIRS = 15
FIRST = Issuance(datetime(2025, 1, 1, 0, 30, tzinfo=KST))


def write_raw(raw_dir: Path, issuance: Issuance) -> None:
    """A raw file as fetch_weather writes it (without its fsync: only the backlog's setup)."""
    items = forecast_items(issuance.base_date, issuance.base_time, 60, 127)
    record = raw_record(Fetched(issuance, issuance, items), datetime(2026, 1, 1, tzinfo=UTC))
    raw_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (raw_dir / f"{issuance.name}.json").write_text(text, encoding="utf-8")


def processed_history(work: Path, history: int) -> Path:
    """A work dir whose first ``history`` hourly issuances are processed."""
    for n in range(history):
        write_raw(work / "raw", Issuance(FIRST.at + timedelta(hours=n)))
    update(work / "raw", work / "out")  # the backlog, once
    return work


def cost_of_issuance(work: Path, n: int) -> float:
    """Seconds to process the ``n``-th hourly issuance, newly arrived."""
    write_raw(work / "raw", Issuance(FIRST.at + timedelta(hours=n)))
    start = time.perf_counter()
    done = update(work / "raw", work / "out")
    elapsed = time.perf_counter() - start
    assert len(done) == 1, done
    return elapsed


def main() -> list[Figure]:
    root = Path(tempfile.mkdtemp(prefix="bench-weather-"))
    try:
        day = processed_history(root / "day", DAY)
        year = processed_history(root / "year", YEAR)
        pairs = [
            (cost_of_issuance(day, DAY + i), cost_of_issuance(year, YEAR + i)) for i in range(PAIRS)
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    day_ms = statistics.median(d for d, _ in pairs) * 1000
    year_ms = statistics.median(y for _, y in pairs) * 1000
    return [
        Figure(
            name="weather preprocess: 1 year / 1 day of history",
            value=statistics.median(y / d for d, y in pairs),
            target=1.5,
            detail=f"one new issuance: {year_ms:.1f} ms after {YEAR:,}, "
            f"{day_ms:.1f} ms after {DAY} (median of {PAIRS} pair ratios)",
        )
    ]
