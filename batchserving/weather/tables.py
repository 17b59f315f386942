"""The forecast tables' rows: a raw issuance file as long rows, long rows as the wide table.

Long (history) rows: one per forecast value and issuance, keyed by ``KEY``, the raw string
``fcstValue`` beside the parsed ``value`` (and ``value_max`` for RN1 ranges), ``label`` for
SKY/PTY codes, ``fetched_at`` of the raw file. Wide (latest) rows: one per forecast hour,
one column per category, the latest issuance winning per (hour, category). Every frame
leaves here with the fixed column types of ``typed``, so all partition files agree.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from batchserving.weather.issuance import Issuance
from batchserving.weather.items import CATEGORIES, ItemError, check_item, check_items
from batchserving.weather.values import parse_rn1, parse_value

KEY = ["nx", "ny", "fcstDate", "fcstTime", "category", "baseDate", "baseTime"]
HOUR = ["nx", "ny", "fcstDate", "fcstTime"]
HISTORY_COLUMNS = [*KEY, "fcstValue", "value", "value_max", "label", "fetched_at"]
LATEST_COLUMNS = [*HOUR, "T1H", "RN1", "RN1_mm", "RN1_mm_max", "SKY", "SKY_label", "PTY"]
LATEST_COLUMNS += ["PTY_label", "UUU", "VVV", "REH", "LGT", "VEC", "WSD", "issuance", "fetched_at"]
TEXT_COLUMNS = {"fcstDate", "fcstTime", "category", "baseDate", "baseTime", "fcstValue", "label"}
TEXT_COLUMNS |= {"fetched_at", "RN1", "SKY_label", "PTY_label", "issuance"}
# A raw file holds one issuance of 60 items, about 15 KB; a larger one is not read.
MAX_RAW_BYTES = 1 << 20


class RawFileError(ValueError):
    """A raw issuance file cannot be read as one."""


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Fixed column types, so every partition file of a dataset has the same schema."""
    types = {
        c: "string" if c in TEXT_COLUMNS else "int64" if c in ("nx", "ny") else "float64"
        for c in frame.columns
    }
    return frame.astype(types)


def raw_items(path: Path) -> tuple[list[dict[str, Any]], str]:
    """The items and ``fetched_at`` of a raw file, each item checked; else RawFileError.

    The items must be the file's issuance (its name), one grid cell, each (hour, category)
    once (``batchserving.weather.items``), so nothing below meets a value unchecked.
    """
    try:
        if path.stat().st_size > MAX_RAW_BYTES:
            raise RawFileError(f"larger than {MAX_RAW_BYTES >> 20} MiB")
        record = json.loads(path.read_text(encoding="utf-8"))
        items, fetched_at = record["items"], record["fetched_at"]
        if not isinstance(items, list) or not items or not isinstance(fetched_at, str):
            raise RawFileError("no items, or no fetched_at")
        cell = check_item(items[0])[1]
        check_items(items, Issuance.parse(path.stem[:8], path.stem[8:]), cell)
    except RawFileError as exc:
        raise RawFileError(f"{path.name}: not a raw issuance file ({exc})") from None
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        what = str(exc) if isinstance(exc, ItemError) else type(exc).__name__
        raise RawFileError(f"{path.name}: not a raw issuance file ({what})") from None
    return items, fetched_at


def long_row(item: dict[str, Any], fetched_at: str) -> dict[str, Any]:
    """One checked item as a history row (HISTORY_COLUMNS)."""
    category, raw = str(item["category"]), str(item["fcstValue"])
    value, value_max, label = parse_value(category, raw)
    return {
        "nx": int(item["nx"]),
        "ny": int(item["ny"]),
        "fcstDate": str(item["fcstDate"]),
        "fcstTime": str(item["fcstTime"]),
        "category": category,
        "baseDate": str(item["baseDate"]),
        "baseTime": str(item["baseTime"]),
        "fcstValue": raw,
        "value": value,
        "value_max": value_max,
        "label": label,
        "fetched_at": fetched_at,
    }


def read_raw(path: Path) -> pd.DataFrame:
    """One raw issuance file as long rows (HISTORY_COLUMNS)."""
    items, fetched_at = raw_items(path)
    rows = [long_row(item, fetched_at) for item in items]
    unknown = {
        row["fcstValue"]
        for row in rows
        if row["category"] == "RN1"
        and math.isnan(row["value"])
        and parse_rn1(row["fcstValue"]) is None
    }
    if unknown:
        print(f"preprocess_weather: {path.name}: unknown RN1 strings kept raw: {sorted(unknown)}")
    return typed(pd.DataFrame(rows, columns=HISTORY_COLUMNS))


def dedupe_latest(long: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """One row per ``key``: the latest issuance, then the latest fetch (never by row order)."""
    ordered = long.sort_values([*key, "baseDate", "baseTime", "fetched_at"], kind="stable")
    return ordered.drop_duplicates(subset=key, keep="last")


def wide_latest(long: pd.DataFrame) -> pd.DataFrame:
    """The latest table's rows for the forecast hours in ``long`` (all issuances of them)."""
    best = dedupe_latest(long, [*HOUR, "category"])
    values = best.pivot(index=HOUR, columns="category", values="value")
    wide = values.reindex(columns=list(CATEGORIES))
    by_cat = best.set_index([*HOUR, "category"])
    for cat, column, extra in (
        ("RN1", "RN1_raw", "fcstValue"),
        ("RN1", "RN1_mm_max", "value_max"),
        ("SKY", "SKY_label", "label"),
        ("PTY", "PTY_label", "label"),
    ):
        part = by_cat.xs(cat, level="category")[extra] if cat in values.columns else None
        wide[column] = part.reindex(wide.index) if part is not None else None
    wide = wide.rename(columns={"RN1": "RN1_mm"}).rename(columns={"RN1_raw": "RN1"})
    issued = best.assign(issuance=best["baseDate"] + best["baseTime"]).groupby(HOUR)
    wide["issuance"] = issued["issuance"].max()
    wide["fetched_at"] = issued["fetched_at"].max()
    return typed(wide.reset_index()[LATEST_COLUMNS])
