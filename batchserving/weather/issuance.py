"""Which KMA issuance to ask for: issuances are hourly at HH:30, out by about HH:45 (KST)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

KST = ZoneInfo("Asia/Seoul")
# An issuance HH30 is published at about HH:40-HH:45; before :45 the previous one is the latest.
AVAILABLE_FROM_MINUTE = 45


@dataclass(frozen=True, order=True)
class Issuance:
    """One forecast issuance: the KST instant HH:30 it was issued at."""

    at: datetime

    @property
    def base_date(self) -> str:
        return self.at.strftime("%Y%m%d")

    @property
    def base_time(self) -> str:
        return self.at.strftime("%H%M")

    @property
    def name(self) -> str:
        """``YYYYMMDDHHMM``: the raw file's stem."""
        return self.base_date + self.base_time

    def previous(self) -> Issuance:
        return Issuance(self.at - timedelta(hours=1))

    @classmethod
    def parse(cls, base_date: str, base_time: str) -> Issuance:
        """From the strings KMA echoes (``20261125``, ``1430``); raise ValueError if malformed."""
        at = datetime.strptime(base_date + base_time, "%Y%m%d%H%M").replace(tzinfo=KST)
        if at.minute != 30:
            raise ValueError(f"base_time {base_time!r} is not HH30")
        return cls(at)


def latest_issuance(instant: datetime) -> Issuance:
    """The latest issuance published at ``instant`` (any timezone; naive is refused).

    Datetime arithmetic, never string arithmetic: 00:10 on the 1st of January steps back
    to 23:30 on the 31st of December of the year before.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{instant.isoformat()} has no timezone; give an offset, e.g. +09:00")
    kst = instant.astimezone(KST)
    if kst.minute < AVAILABLE_FROM_MINUTE:
        kst -= timedelta(hours=1)
    return Issuance(kst.replace(minute=30, second=0, microsecond=0))
