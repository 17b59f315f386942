"""The incremental forecast table store: which raw issuances are in it, and merging new ones.

Under the out dir:

- ``history/<baseDate>.parquet``: long rows (``batchserving.weather.tables``) by issue date.
- ``latest/<YYYYMM>.parquet`` (month of the forecast hour): wide rows, latest issuance wins.
- ``state.json``: which raw issuances are processed (all names, plus size/mtime/sha256 of
  the recent ones that may still be re-fetched), and which were quarantined.
- ``quarantine/<issuance>.<sha256 prefix>.json``: raw files that could not be read, moved
  out of ``raw/`` with their bytes so they block no later run; the log names each.

A run reads only new or changed raw files, rewrites only the history partitions of their
issue dates (<= 24 issuances each) and the latest partitions of their forecast months, so
an hourly run costs the same after a year as after a day. What the directories hold is
the open partition: past days are sealed out of them (``batchserving.weather.seal``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from batchserving.core.atomic import write_json, write_text, write_with
from batchserving.weather.tables import (
    HISTORY_COLUMNS,
    HOUR,
    KEY,
    RawFileError,
    dedupe_latest,
    read_raw,
    typed,
    wide_latest,
)

# A raw file changes only when its issuance is re-fetched, and the ultra-short operations
# keep about one day (~24 issuances); the newest 72 are rechecked (a stat each) for margin.
RECHECK_ISSUANCES = 72
RAW_NAME = re.compile(r"^\d{8}\d{2}30$")
STATE_VERSION = 1
QUARANTINE = "quarantine"  # under the out dir: raw files that could not be read
QUARANTINE_README = """\
Raw KMA issuance files that preprocess_weather could not read, moved here from raw/ so
they block no later run. Each keeps its bytes, named <issuance>.<sha256 prefix>.json;
state.json's "quarantined" maps each issuance to its file, and the run's log says why.
A versioned DVC output of preprocess_weather, like the tables: nothing is lost.
"""


# --- state -----------------------------------------------------------------------------


def fingerprint(path: Path) -> list:
    """[size, mtime_ns, sha256 or None]: a stat, the hash filled in only when it differs."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, None]


def sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_state(path: Path) -> dict[str, Any]:
    """The state file's record (an empty one when there is none); else RawFileError."""
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


def raw_names(raw_dir: Path) -> list[str]:
    """The issuance names of the raw files in ``raw_dir``, sorted; other files ignored."""
    names = []
    if raw_dir.is_dir():
        with os.scandir(raw_dir) as entries:
            names = [e.name[:-5] for e in entries if e.name.endswith(".json")]
    return sorted(n for n in names if RAW_NAME.match(n))


def changed_recent(raw_dir: Path, state: dict[str, Any]) -> tuple[list[str], dict[str, list]]:
    """The recent processed issuances whose file changed, and every recent fingerprint."""
    changed, recent = [], {}
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
            changed.append(name)
        recent[name] = seen
    return changed, recent


def pending(raw_dir: Path, state: dict[str, Any]) -> tuple[list[str], dict[str, list]]:
    """Raw issuances to (re)process: new names, and recent files whose content changed."""
    done = set(state["done"])
    todo = [n for n in raw_names(raw_dir) if n not in done and not known_broken(raw_dir, n, state)]
    changed, recent = changed_recent(raw_dir, state)
    return sorted(set(todo + changed)), recent


def next_state(
    raw_dir: Path,
    state: dict[str, Any],
    processed: list[str],
    recent: dict[str, list],
    quarantined: dict[str, str],
) -> dict[str, Any]:
    """The state record after a run that processed ``processed`` and quarantined the rest."""
    done = sorted(set(state["done"]) - quarantined.keys() | set(processed))
    for name in processed:
        path = raw_dir / f"{name}.json"
        recent[name] = [*fingerprint(path)[:2], sha256(path)]
    recent = {n: recent[n] for n in done[-RECHECK_ISSUANCES:] if n in recent}
    quarantined = {**state.get("quarantined", {}), **quarantined}
    record = {"version": STATE_VERSION, "done": done, "recent": recent}
    if "sealed_before" in state:  # batchserving.weather.seal: days before it are sealed
        record["sealed_before"] = state["sealed_before"]
    return record | ({"quarantined": quarantined} if quarantined else {})


# --- partitions ------------------------------------------------------------------------


def read_partition(path: Path, columns: list[str]) -> pd.DataFrame:
    """A partition file's rows; no rows (with ``columns``) when there is none yet."""
    if path.exists():
        return pd.read_parquet(path)
    return pd.DataFrame(columns=columns)


def write_partition(path: Path, frame: pd.DataFrame) -> None:
    """Write a partition atomically (zstd parquet, no index)."""
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
    raw_dir: Path, names: list[str], quarantine_dir: Path, sealed_before: str = ""
) -> tuple[list[pd.DataFrame], dict[str, str]]:
    """The long rows of each readable raw file; the others moved to quarantine (name -> file).

    A file of a sealed day (before ``sealed_before``) is quarantined too: its day's tables
    are sealed, and merging it into a new open partition would count it twice.
    """
    frames, quarantined = [], {}
    for name in names:
        path = raw_dir / f"{name}.json"
        try:
            if name[:8] < sealed_before:
                raise RawFileError(f"issuance {name} is of a day sealed before {sealed_before}")
            frames.append(read_raw(path))
        except RawFileError as why:
            quarantined[name] = quarantine(path, quarantine_dir, why)
    return frames, quarantined


# --- a run -----------------------------------------------------------------------------


def clear(out_dir: Path) -> None:
    """Forget everything processed: the tables and the state (quarantine is kept)."""
    for d in (out_dir / "history", out_dir / "latest"):
        shutil.rmtree(d, ignore_errors=True)
    (out_dir / "state.json").unlink(missing_ok=True)


def update(raw_dir: Path, out_dir: Path, rebuild: bool = False) -> list[str]:
    """Process new/changed raw issuances into ``out_dir``; return the issuances processed."""
    history_dir, latest_dir, state_path = (
        out_dir / "history",
        out_dir / "latest",
        out_dir / "state.json",
    )
    if rebuild:
        clear(out_dir)
    state = load_state(state_path)
    quarantine_dir = out_dir / QUARANTINE
    if not (quarantine_dir / "README.md").exists():
        write_text(quarantine_dir / "README.md", QUARANTINE_README)  # DVC needs the dir
    todo, recent = pending(raw_dir, state)
    if not todo:
        return []
    sealed_before = state.get("sealed_before", "")
    frames, quarantined = read_or_quarantine(raw_dir, todo, quarantine_dir, sealed_before)
    todo = [name for name in todo if name not in quarantined]
    if frames:
        new = pd.concat(frames, ignore_index=True)
        history = merge_history(history_dir, new)
        write_latest(latest_dir, history_dir, history, new)
        for base_date, frame in history.items():
            write_partition(history_dir / f"{base_date}.parquet", frame)
    # The state last: a crash before this line only makes the next run redo the same work.
    write_json(state_path, next_state(raw_dir, state, todo, recent, quarantined))
    return todo
