"""Which prediction files a KST day holds.

``batch_inference`` names its files after the run's logical date in UTC:
``output/predictions/<YYYY-MM-DD>/<YYYY-MM-DDTHH-MM-SSZ>.csv`` (or ``.parquet`` for a
large batch written there); a run started by an asset event keeps the microseconds of
its ``run_after``: ``...T09-25-00.412000Z.csv``. A KST day runs from 00:00 to 24:00
Asia/Seoul, i.e. from 15:00 UTC the day before to 15:00 UTC: its files are those of the
two UTC folders whose timestamp falls in that window. Other names (a large batch's own
``output_path``, a labels file) and symbolic links are not the day's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

KST = timezone(timedelta(hours=9), "KST")
FILE_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2})(\.\d{6})?Z\.(csv|parquet)$")
DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DayError(ValueError):
    """The day to monitor is not a date, or it holds more files than allowed."""


def parse_day(text: str | None) -> date:
    """A ``YYYY-MM-DD`` day, or DayError naming what to pass."""
    if not text or not DAY_PATTERN.match(text):
        shown = repr(text[:40]) if text else "nothing"
        raise DayError(f"the day to monitor is {shown}: give a KST date as YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DayError(f"the day to monitor, {text!r}, is not a calendar date") from None


def window(day: date) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a KST day."""
    start = datetime(day.year, day.month, day.day, tzinfo=KST).astimezone(UTC)
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class DayFile:
    """A prediction file of the day and the instant its name gives."""

    path: Path
    at: datetime


def file_instant(match: re.Match[str]) -> datetime:
    """The UTC instant a prediction file's name (matched by ``FILE_NAME``) gives."""
    stamp, fraction = match.group(1), match.group(2) or ".000000"
    return datetime.strptime(stamp + fraction, "%Y-%m-%dT%H-%M-%S.%f").replace(tzinfo=UTC)


def day_files(predictions_dir: Path, day: date, max_files: int) -> list[DayFile]:
    """The day's prediction files in time order; DayError beyond ``max_files``."""
    start, end = window(day)
    found = []
    for folder in sorted({start.date(), (end - timedelta(seconds=1)).date()}):
        directory = predictions_dir / folder.isoformat()
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            match = FILE_NAME.match(path.name)
            # A link could point anywhere; batch_inference writes plain files.
            if not match or path.is_symlink() or not path.is_file():
                continue
            at = file_instant(match)
            if start <= at < end:
                found.append(DayFile(path, at))
                if len(found) > max_files:
                    raise DayError(
                        f"{day} has more than {max_files} prediction files under "
                        f"{predictions_dir}: raise monitoring.max_files in params.yaml"
                    )
    return sorted(found, key=lambda f: (f.at, f.path.name))
