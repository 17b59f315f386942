"""The forecast tables' rows (batchserving.weather.tables): latest issuance wins, per category."""

from __future__ import annotations

import pandas as pd

from batchserving.weather import fake_kma, items
from batchserving.weather.tables import dedupe_latest, wide_latest


def row(base_time: str, fcst_time: str, category: str, value: float, fetched: str = "t1") -> dict:
    return {
        "nx": 60,
        "ny": 127,
        "fcstDate": "20261125",
        "fcstTime": fcst_time,
        "category": category,
        "baseDate": "20261125",
        "baseTime": base_time,
        "fcstValue": f"{value:g}",
        "value": value,
        "value_max": value,
        "label": None,
        "fetched_at": fetched,
    }


def test_latest_issuance_wins_per_category_not_per_row_order() -> None:
    long = pd.DataFrame(
        [
            row("1430", "1600", "T1H", 9.0),  # newer issuance first: order must not matter
            row("1330", "1600", "T1H", 7.0),
            row("1330", "1600", "REH", 50.0),
            row("1430", "1600", "REH", 55.0),
            row("1330", "1500", "T1H", 6.0),
        ]
    )
    best = dedupe_latest(long, ["nx", "ny", "fcstDate", "fcstTime", "category"])
    # Not collapsed on (baseDate, baseTime) or fcstTime alone: 3 distinct values survive.
    assert len(best) == 3
    wide = wide_latest(long).set_index("fcstTime")
    assert wide.loc["1600", "T1H"] == 9.0 and wide.loc["1600", "REH"] == 55.0
    assert wide.loc["1500", "T1H"] == 6.0
    assert wide.loc["1600", "issuance"] == "202611251430"


def test_refetch_of_the_same_issuance_wins_by_ingestion_time() -> None:
    long = pd.DataFrame(
        [row("1430", "1600", "T1H", 9.0, "t2"), row("1430", "1600", "T1H", 8.0, "t1")]
    )
    best = dedupe_latest(long, ["nx", "ny", "fcstDate", "fcstTime", "category", "baseTime"])
    assert best["value"].tolist() == [9.0]


def test_the_fake_kma_serves_the_categories_the_checks_and_tables_know() -> None:
    """One definition of the KMA categories: the fake server's, the checks' and the tables'."""
    assert fake_kma.CATEGORIES is items.CATEGORIES
