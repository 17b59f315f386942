"""KMA forecast value strings as numbers: RN1 amounts, missing markers, SKY/PTY labels.

``docs/kma-api.md`` ("Categories"): every value arrives as a string; RN1 is a phrase
(``강수없음``, ``1mm 미만``, ``3.5mm``, ``30.0~50.0mm``, ``50.0mm 이상``), SKY and PTY are
codes, and +-900 and beyond mean missing. A string this module does not know is missing
(NaN), never turned into 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

SKY_LABELS = {1: "clear", 3: "mostly cloudy", 4: "overcast"}
PTY_LABELS = {
    0: "none",
    1: "rain",
    2: "rain/snow",
    3: "snow",
    5: "drizzle",
    6: "drizzle/snow flurries",
    7: "snow flurries",
}
CODE_LABELS = {"SKY": SKY_LABELS, "PTY": PTY_LABELS}
MISSING_AT = 900.0  # KMA marks a missing value with +-900 and beyond (e.g. -999)


@dataclass(frozen=True)
class Rain:
    """RN1 as numbers: at least ``low`` mm, under (or up to) ``high`` mm; high None = open."""

    low: float
    high: float | None


_RN1_NUMBER = r"(\d+(?:\.\d+)?)\s*mm"


def parse_rn1(raw: str) -> Rain | None:
    """Parse RN1 (``강수없음``, ``1mm 미만``, ``3.5mm``, ``30.0~50.0mm``, ``50.0mm 이상``).

    Returns None for a string it does not know (kept raw, never turned into 0).
    """
    text = raw.strip()
    if text == "강수없음":
        return Rain(0.0, 0.0)
    if m := re.fullmatch(_RN1_NUMBER + r"\s*미만", text):
        return Rain(0.0, float(m.group(1)))
    if m := re.fullmatch(_RN1_NUMBER + r"\s*이상", text):
        return Rain(float(m.group(1)), None)
    if m := re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:mm)?\s*~\s*" + _RN1_NUMBER, text):
        return Rain(float(m.group(1)), float(m.group(2)))
    if m := re.fullmatch(_RN1_NUMBER, text):
        return Rain(float(m.group(1)), float(m.group(1)))
    try:
        number = float(text)
    except ValueError:
        return None
    return Rain(number, number) if math.isfinite(number) else None


def parse_value(category: str, raw: str) -> tuple[float, float, str | None]:
    """(value, value_max, label) of one forecast value; NaN where missing or unknown."""
    nan = float("nan")
    try:
        number = float(raw)
    except (TypeError, ValueError):
        number = None
    if number is not None and (not math.isfinite(number) or abs(number) >= MISSING_AT):
        return nan, nan, None
    if category == "RN1":
        rain = parse_rn1(str(raw))
        if rain is None:
            return nan, nan, None
        return rain.low, nan if rain.high is None else rain.high, None
    if number is None:
        return nan, nan, None
    labels = CODE_LABELS.get(category)
    label = labels.get(int(number)) if labels and number.is_integer() else None
    return number, number, label
