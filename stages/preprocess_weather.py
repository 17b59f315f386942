"""Stage ``preprocess_weather``: raw KMA issuances -> a history table and a latest table.

Outputs (parquet datasets: ``pandas.read_parquet(dir)`` reads one as a single table):

- ``history/<baseDate>.parquet``: long format, one row per forecast value and issuance,
  keyed by (nx, ny, fcstDate, fcstTime, category, baseDate, baseTime); the raw string
  ``fcstValue`` beside the parsed ``value`` (and ``value_max`` for RN1 ranges), ``label``
  for SKY/PTY codes, ``fetched_at`` of the raw file. |value| >= 900 is missing (NaN).
- ``latest/<YYYYMM>.parquet`` (month of the forecast hour): one row per forecast hour, one
  column per category; for each (hour, category) the latest issuance wins.
- ``state.json``: which raw issuances are processed (all names, plus size/mtime/sha256 of
  the recent ones that may still be re-fetched), and which were quarantined.
- ``quarantine/<issuance>.<sha256 prefix>.json``: raw files this stage could not read
  (not JSON, too large, an item unchecked by the fetch: ``batchserving.weather.items``),
  moved out of ``raw/`` with their bytes so they block no later run; the log names each.

Incremental: a run reads only new or changed raw files, rewrites only the history
partitions of their issue dates (<= 24 issuances each) and the latest partitions of their
forecast months, so an hourly run costs the same after a year as after a day. Every output
is a DVC ``persist`` output: DVC must not delete it before the stage runs.
``--rebuild`` ignores the state and reprocesses every raw file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from batchserving.core.atomic import write_json, write_text, write_with
from batchserving.core.names import WEATHER_DIR, WEATHER_RAW_DIR
from batchserving.weather.issuance import Issuance
from batchserving.weather.items import CATEGORIES, ItemError, check_item, check_items

KEY = ["nx", "ny", "fcstDate", "fcstTime", "category", "baseDate", "baseTime"]
HOUR = ["nx", "ny", "fcstDate", "fcstTime"]
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
MISSING_AT = 900.0  # KMA marks a missing value with +-900 and beyond (e.g. -999)
# A raw file changes only when its issuance is re-fetched, and the ultra-short operations
# keep about one day (~24 issuances); the newest 72 are rechecked (a stat each) for margin.
RECHECK_ISSUANCES = 72
RAW_NAME = re.compile(r"^\d{8}\d{2}30$")
STATE_VERSION = 1
# A raw file holds one issuance of 60 items, about 15 KB; a larger one is not read.
MAX_RAW_BYTES = 1 << 20
QUARANTINE = "quarantine"  # under the out dir: raw files that could not be read
QUARANTINE_README = """\
Raw KMA issuance files that preprocess_weather could not read, moved here from raw/ so
they block no later run. Each keeps its bytes, named <issuance>.<sha256 prefix>.json;
state.json's "quarantined" maps each issuance to its file, and the run's log says why.
A versioned DVC output of preprocess_weather, like the tables: nothing is lost.
"""

HISTORY_COLUMNS = [*KEY, "fcstValue", "value", "value_max", "label", "fetched_at"]


class RawFileError(ValueError):
    """A raw issuance file cannot be read as one."""


# --- parsing values --------------------------------------------------------------------


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
    labels = {"SKY": SKY_LABELS, "PTY": PTY_LABELS}.get(category)
    label = labels.get(int(number)) if labels and number.is_integer() else None
    return number, number, label


# --- raw files -------------------------------------------------------------------------


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


def read_raw(path: Path) -> pd.DataFrame:
    """One raw issuance file as long rows (HISTORY_COLUMNS)."""
    items, fetched_at = raw_items(path)
    rows = []
    unknown = set()
    for item in items:
        category = str(item["category"])
        raw = str(item["fcstValue"])
        value, value_max, label = parse_value(category, raw)
        if category == "RN1" and math.isnan(value) and parse_rn1(raw) is None:
            unknown.add(raw)
        rows.append(
            {
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
        )
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
    wide = wide.reset_index()
    columns = [*HOUR, "T1H", "RN1", "RN1_mm", "RN1_mm_max", "SKY", "SKY_label", "PTY"]
    columns += ["PTY_label", "UUU", "VVV", "REH", "LGT", "VEC", "WSD", "issuance", "fetched_at"]
    return typed(wide[columns])


# --- state -----------------------------------------------------------------------------


def fingerprint(path: Path) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, None]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_state(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"version": STATE_VERSION, "done": [], "recent": {}}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        known = state.get("version") == STATE_VERSION and isinstance(state.get("done"), list)
        known = known and isinstance(state.get("recent"), dict)
    except (ValueError, AttributeError):
        known = False
    if not known:
        raise RawFileError(
            f"{path}: not a state file of version {STATE_VERSION}; run with --rebuild"
        )
    return state


def quarantine_name(path: Path) -> str:
    """The name a raw file gets in quarantine: its issuance and the start of its sha256."""
    return f"{path.stem}.{sha256(path)[:12]}.json"


def known_broken(raw_dir: Path, name: str, state: dict[str, Any]) -> bool:
    """Whether raw file ``name`` holds the very bytes already quarantined under its name.

    A workspace that pulls the raw data as fetch_weather last saved it gets such a file
    back; it is skipped (its copy is in quarantine), not quarantined and logged again.
    """
    kept = state.get("quarantined", {}).get(name)
    return kept is not None and kept == quarantine_name(raw_dir / f"{name}.json")


def pending(raw_dir: Path, state: dict[str, Any]) -> tuple[list[str], dict[str, list]]:
    """Raw issuances to (re)process: new names, and recent files whose content changed."""
    names = []
    if raw_dir.is_dir():
        with os.scandir(raw_dir) as entries:
            names = [e.name[:-5] for e in entries if e.name.endswith(".json")]
    names = sorted(n for n in names if RAW_NAME.match(n))
    done = set(state["done"])
    todo = [n for n in names if n not in done and not known_broken(raw_dir, n, state)]
    recent: dict[str, list] = {}
    for name in state["done"][-RECHECK_ISSUANCES:]:
        path = raw_dir / f"{name}.json"
        if not path.exists():
            continue
        known = state["recent"].get(name)
        seen = fingerprint(path)
        if known and known[:2] == seen[:2]:
            recent[name] = known
            continue
        seen[2] = sha256(path)
        if not known or known[2] != seen[2]:
            todo.append(name)
        recent[name] = seen
    return sorted(set(todo)), recent


# --- partitions ------------------------------------------------------------------------


TEXT_COLUMNS = {"fcstDate", "fcstTime", "category", "baseDate", "baseTime", "fcstValue", "label"}
TEXT_COLUMNS |= {"fetched_at", "RN1", "SKY_label", "PTY_label", "issuance"}


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Fixed column types, so every partition file of a dataset has the same schema."""
    types = {
        c: "string" if c in TEXT_COLUMNS else "int64" if c in ("nx", "ny") else "float64"
        for c in frame.columns
    }
    return frame.astype(types)


def read_partition(path: Path, columns: list[str]) -> pd.DataFrame:
    if path.exists():
        return pd.read_parquet(path)
    return pd.DataFrame(columns=columns)


def write_partition(path: Path, frame: pd.DataFrame) -> None:
    write_with(path, lambda tmp: frame.to_parquet(tmp, index=False, compression="zstd"))


def dates_before(dates: Iterable[str]) -> set[str]:
    """Each date and the day before (issuances forecasting a day's hours start the day before)."""
    out = set()
    for d in dates:
        out.add(d)
        out.add((datetime.strptime(d, "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d"))
    return out


def merge_history(history_dir: Path, new: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each touched issue-date partition with the processed issuances' rows replaced."""
    reprocessed = set(new["baseDate"] + new["baseTime"])
    history: dict[str, pd.DataFrame] = {}
    for base_date, rows in new.groupby("baseDate"):
        old = read_partition(history_dir / f"{base_date}.parquet", HISTORY_COLUMNS)
        if len(old):
            old = old[~(old["baseDate"] + old["baseTime"]).isin(reprocessed)]
        merged = pd.concat([old, rows] if len(old) else [rows], ignore_index=True)
        merged = dedupe_latest(merged, KEY).sort_values(KEY, kind="stable")
        history[base_date] = typed(merged[HISTORY_COLUMNS].reset_index(drop=True))
    return history


def write_latest(
    latest_dir: Path, history_dir: Path, history: dict[str, pd.DataFrame], new: pd.DataFrame
) -> None:
    """Recompute the touched forecast hours from every issuance that forecasts them."""
    hours = new[HOUR].drop_duplicates()
    sources = []
    for base_date in sorted(dates_before(hours["fcstDate"])):
        frame = history.get(base_date)
        if frame is None:
            frame = read_partition(history_dir / f"{base_date}.parquet", HISTORY_COLUMNS)
        sources.append(frame)
    candidates = pd.concat(sources, ignore_index=True).merge(hours, on=HOUR)
    fresh = wide_latest(candidates)
    for month, rows in fresh.groupby(fresh["fcstDate"].str[:6]):
        path = latest_dir / f"{month}.parquet"
        old = read_partition(path, list(rows.columns))
        if len(old):
            old = old.merge(rows[HOUR], on=HOUR, how="left", indicator=True)
            old = old[old["_merge"] == "left_only"].drop(columns="_merge")
        merged = pd.concat([old, rows] if len(old) else [rows], ignore_index=True)
        write_partition(path, typed(merged.sort_values(HOUR, kind="stable").reset_index(drop=True)))


# --- quarantine ------------------------------------------------------------------------


def quarantine(path: Path, quarantine_dir: Path, why: RawFileError) -> str:
    """Move an unreadable raw file into ``quarantine_dir`` (bytes kept); return its new name.

    Named by issuance and content, so quarantining the same bytes twice (a workspace that
    pulled them again) keeps one file. The move is a rename: the file is in raw/ or here.
    """
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    kept = quarantine_dir / quarantine_name(path)
    os.replace(path, kept)
    print(
        f"preprocess_weather: quarantined {path.stem}: {why}; moved to {kept}, the run goes "
        "on without it (a re-fetch of that issuance is read as new)",
        flush=True,
    )
    return kept.name


def read_or_quarantine(
    raw_dir: Path, names: list[str], quarantine_dir: Path
) -> tuple[list[pd.DataFrame], dict[str, str]]:
    """The long rows of each readable raw file; the others moved to quarantine (name -> file)."""
    frames, quarantined = [], {}
    for name in names:
        path = raw_dir / f"{name}.json"
        try:
            frames.append(read_raw(path))
        except RawFileError as why:
            quarantined[name] = quarantine(path, quarantine_dir, why)
    return frames, quarantined


def update(raw_dir: Path, out_dir: Path, rebuild: bool = False) -> list[str]:
    """Process new/changed raw issuances into ``out_dir``; return the issuances processed."""
    history_dir, latest_dir, state_path = (
        out_dir / "history",
        out_dir / "latest",
        out_dir / "state.json",
    )
    if rebuild:
        for d in (history_dir, latest_dir):
            shutil.rmtree(d, ignore_errors=True)
        state_path.unlink(missing_ok=True)
    state = load_state(state_path)
    quarantine_dir = out_dir / QUARANTINE
    if not (quarantine_dir / "README.md").exists():
        write_text(quarantine_dir / "README.md", QUARANTINE_README)  # DVC needs the dir
    todo, recent = pending(raw_dir, state)
    if not todo:
        return []
    frames, quarantined = read_or_quarantine(raw_dir, todo, quarantine_dir)
    todo = [name for name in todo if name not in quarantined]
    if frames:
        new = pd.concat(frames, ignore_index=True)
        history = merge_history(history_dir, new)
        write_latest(latest_dir, history_dir, history, new)
        for base_date, frame in history.items():
            write_partition(history_dir / f"{base_date}.parquet", frame)

    # The state last: a crash before this line only makes the next run redo the same work.
    done = sorted(set(state["done"]) - quarantined.keys() | set(todo))
    for name in todo:
        path = raw_dir / f"{name}.json"
        recent[name] = [*fingerprint(path)[:2], sha256(path)]
    recent = {n: recent[n] for n in done[-RECHECK_ISSUANCES:] if n in recent}
    quarantined = {**state.get("quarantined", {}), **quarantined}
    record = {"version": STATE_VERSION, "done": done, "recent": recent}
    write_json(state_path, record | ({"quarantined": quarantined} if quarantined else {}))
    return todo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw-dir", default=WEATHER_RAW_DIR)
    parser.add_argument("--out-dir", default=WEATHER_DIR)
    parser.add_argument("--rebuild", action="store_true", help="reprocess every raw file")
    args = parser.parse_args()
    try:
        done = update(Path(args.raw_dir), Path(args.out_dir), rebuild=args.rebuild)
    except RawFileError as exc:
        sys.exit(f"preprocess_weather: {exc}")
    if done:
        print(f"preprocess_weather: processed {len(done)} issuance(s): {done[0]}..{done[-1]}")
    else:
        print("preprocess_weather: no new or changed raw issuance; tables unchanged")


if __name__ == "__main__":
    main()
