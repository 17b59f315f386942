"""What one forecast item of ``getUltraSrtFcst`` must be before anything stores or reads it.

``docs/kma-api.md`` ("Response", "Categories"): an item names its issuance (``baseDate``
``YYYYMMDD``, ``baseTime`` ``HH30``), a known category, the forecast hour (``fcstDate``
``YYYYMMDD``, ``fcstTime`` ``HHMM``), the value as a string and the grid cell as integers.
One issuance holds 6 forecast hours x 10 categories = 60 items, one per (hour, category).

The fetch checks every item of a reply here before it stores any; preprocessing checks a
stored file's items here before it reads them, so a value nobody checked never reaches a
table. Errors name the field and at most ``SHOWN_LIMIT`` characters of the bad value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from batchserving.weather.issuance import Issuance

CATEGORIES = ("T1H", "RN1", "SKY", "UUU", "VVV", "REH", "PTY", "LGT", "VEC", "WSD")
FORECAST_HOURS = 6  # issuance HH30 forecasts (HH+1)00 .. (HH+6)00
ISSUANCE_ITEMS = FORECAST_HOURS * len(CATEGORIES)
VALUE_LIMIT = 32  # characters of fcstValue; the longest real one ("30.0~50.0mm") has 11
SHOWN_LIMIT = 60  # characters of a bad value quoted in an error
GRID = {"nx": (1, 149), "ny": (1, 253)}  # the KMA grid's extent
DIGITS = {"fcstDate": re.compile(r"[0-9]{8}"), "fcstTime": re.compile(r"[0-9]{4}")}


class ItemError(ValueError):
    """An item that is not a forecast item of the documented shape."""


def shown(value: Any) -> str:
    """``value`` as quoted in an error: its repr, cut to ``SHOWN_LIMIT`` characters."""
    text = repr(value)
    return text if len(text) <= SHOWN_LIMIT else text[: SHOWN_LIMIT - 1] + "…"


def grid_number(item: dict[str, Any], field: str) -> int:
    """``nx``/``ny`` as an int inside the grid (JSON integers; a bool or float is refused)."""
    value = item.get(field)
    low, high = GRID[field]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ItemError(f"{field} {shown(value)} is not an integer from {low} to {high}")
    return value


def forecast_hour(item: dict[str, Any]) -> datetime:
    """The item's forecast hour from ``fcstDate`` (YYYYMMDD) and ``fcstTime`` (HHMM)."""
    for field, pattern in DIGITS.items():
        value = item.get(field)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ItemError(f"{field} {shown(value)} is not {pattern.pattern} digits")
    try:
        return datetime.strptime(item["fcstDate"] + item["fcstTime"], "%Y%m%d%H%M")
    except ValueError:
        raise ItemError(
            f"fcstDate/fcstTime {item['fcstDate']}/{item['fcstTime']} is not a real date and time"
        ) from None


def item_issuance(item: dict[str, Any]) -> Issuance:
    """The issuance an item names (``baseDate`` YYYYMMDD, ``baseTime`` HH30)."""
    base_date, base_time = item.get("baseDate"), item.get("baseTime")
    if not isinstance(base_date, str) or not isinstance(base_time, str):
        raise ItemError(f"baseDate/baseTime {shown(base_date)}/{shown(base_time)} are not strings")
    if not (DIGITS["fcstDate"].fullmatch(base_date) and DIGITS["fcstTime"].fullmatch(base_time)):
        raise ItemError(f"baseDate/baseTime {shown(base_date)}/{shown(base_time)} are malformed")
    try:
        return Issuance.parse(base_date, base_time)
    except ValueError as exc:
        raise ItemError(f"baseDate/baseTime {base_date}/{base_time}: {exc}") from None


def check_item(item: Any) -> tuple[Issuance, tuple[int, int], str, str, str]:
    """(issuance, (nx, ny), fcstDate, fcstTime, category) of a well-formed item; else ItemError."""
    if not isinstance(item, dict):
        raise ItemError(f"an item is {type(item).__name__}, not an object")
    category = item.get("category")
    if category not in CATEGORIES:
        raise ItemError(f"category {shown(category)} is not one of {', '.join(CATEGORIES)}")
    value = item.get("fcstValue")
    if not isinstance(value, str) or not value.strip() or len(value) > VALUE_LIMIT:
        raise ItemError(
            f"fcstValue {shown(value)} of {category} is not a string of 1 to {VALUE_LIMIT} "
            "characters"
        )
    cell = grid_number(item, "nx"), grid_number(item, "ny")
    forecast_hour(item)
    return item_issuance(item), cell, item["fcstDate"], item["fcstTime"], category


def check_items(items: Iterable[Any], issuance: Issuance, cell: tuple[int, int]) -> None:
    """Every item well formed, of ``issuance`` and grid ``cell``, each (hour, category) once.

    Raise ItemError naming the first item that is not (its position, the field, the value).
    """
    seen: set[tuple[str, str, str]] = set()
    for position, item in enumerate(items, 1):
        try:
            named, at, fcst_date, fcst_time, category = check_item(item)
            if named != issuance:
                raise ItemError(f"it names issuance {named.name}, not {issuance.name}")
            if at != cell:
                raise ItemError(f"it is for grid nx={at[0]}, ny={at[1]}, not {cell[0]}/{cell[1]}")
            if (fcst_date, fcst_time, category) in seen:
                raise ItemError(f"{category} at {fcst_date} {fcst_time} appears twice")
        except ItemError as exc:
            raise ItemError(f"item {position}: {exc}") from None
        seen.add((fcst_date, fcst_time, category))
        if len(seen) > ISSUANCE_ITEMS:
            raise ItemError(f"more than the {ISSUANCE_ITEMS} items one issuance holds")
