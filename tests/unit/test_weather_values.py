"""KMA value strings as numbers (batchserving.weather.values): RN1 phrases, missing, labels."""

from __future__ import annotations

import math

import pytest

from batchserving.weather.values import parse_rn1, parse_value


@pytest.mark.parametrize(
    ("raw", "low", "high"),
    [
        ("강수없음", 0.0, 0.0),
        ("1mm 미만", 0.0, 1.0),
        ("1.0mm 미만", 0.0, 1.0),
        ("3.5mm", 3.5, 3.5),
        ("1.0mm", 1.0, 1.0),
        ("29.9mm", 29.9, 29.9),
        ("30.0~50.0mm", 30.0, 50.0),
        ("50.0mm 이상", 50.0, None),
    ],
)
def test_rn1_strings(raw: str, low: float, high: float | None) -> None:
    rain = parse_rn1(raw)
    assert rain is not None and (rain.low, rain.high) == (low, high)


def test_unknown_rn1_is_missing_not_zero() -> None:
    assert parse_rn1("비 조금") is None
    value, value_max, _ = parse_value("RN1", "비 조금")
    assert math.isnan(value) and math.isnan(value_max)


@pytest.mark.parametrize("raw", ["-999", "900", "-900", "999.0"])
def test_900_and_beyond_are_missing(raw: str) -> None:
    assert math.isnan(parse_value("T1H", raw)[0])
    assert math.isnan(parse_value("RN1", raw)[0])


def test_codes_keep_their_labels() -> None:
    assert parse_value("SKY", "4") == (4.0, 4.0, "overcast")
    assert parse_value("PTY", "0") == (0.0, 0.0, "none")
    assert parse_value("PTY", "7")[2] == "snow flurries"
    assert parse_value("T1H", "-3.5") == (-3.5, -3.5, None)
