"""Seal past days of the weather store into DVC files of their own: a run moves one partition.

The stages' outputs (``raw/``, ``history/``, ``latest/``, ``state.json``) are the *open*
partition: the newest ``OPEN_DAYS`` issue days, and the forecast months from the oldest
open day's on. Once every raw issuance of a day older than that is processed, the day is
sealed: its raw files, its history partition and any latest month wholly before the
window move under ``output/weather/sealed/`` and each gets a ``.dvc`` file of its own,

    weather/sealed/raw/<baseDate>.dvc       -> output/weather/sealed/raw/<baseDate>/
    weather/sealed/history/<baseDate>.dvc   -> output/weather/sealed/history/<baseDate>.parquet
    weather/sealed/latest/<YYYYMM>.dvc      -> output/weather/sealed/latest/<YYYYMM>.parquet

committed with the data version on ``data/weather`` (``batchserving.registry.dataref``).
The state forgets the sealed issuances and keeps ``sealed_before``, the first open day;
a raw file of a sealed day that shows up again is quarantined, never merged twice.
Then ``dvc commit`` records the smaller open outputs in ``weather/dvc.lock``. So a fresh
workspace pulls and hashes the open partition only, and one more hour pushes one
issuance and the open manifests, flat in the length of the history; ``dvc pull`` on a
checkout of ``data/weather`` still gets every day.

The window is two days: KMA serves about one day back, so no re-fetch can change an
issuance of a sealed day, and every history partition that recomputing a forecast hour
of the open days reads (the day before the hour) is open, or sealed with issuances that
a later one supersedes anyway (the latest issuance wins).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from batchserving.core.atomic import write_json, write_text
from batchserving.core.names import WEATHER_DIR, WEATHER_PIPELINE, WEATHER_RAW_DIR
from batchserving.registry.git import run_tool
from batchserving.weather.store import load_state, raw_names

OPEN_DAYS = 2
SEALED = "sealed"  # under the weather dir (the data) and the pipeline's dir (the .dvc files)
STAGES = ("fetch_weather", "preprocess_weather")


def first_open_day(names: list[str]) -> str | None:
    """The oldest issue day kept open: OPEN_DAYS days back from the newest issuance's."""
    if not names:
        return None
    newest = datetime.strptime(max(names)[:8], "%Y%m%d")
    return (newest - timedelta(days=OPEN_DAYS - 1)).strftime("%Y%m%d")


def sealable_days(names: list[str], state: dict, first_open: str) -> list[str]:
    """The days before ``first_open`` to seal, oldest first, up to the first unprocessed one."""
    settled = set(state["done"]) | set(state.get("quarantined", {}))
    days: dict[str, list[str]] = {}
    for name in names:
        if name[:8] < first_open:
            days.setdefault(name[:8], []).append(name)
    sealed = []
    for day in sorted(days):
        if not settled.issuperset(days[day]):
            break  # a day not fully processed stays open, and every day after it
        sealed.append(day)
    return sealed


def dvc_file(repo: Path, kind: str, name: str, data: Path) -> Path:
    """Write the ``.dvc`` file tracking ``data`` (hash filled in by ``dvc commit``)."""
    path = repo / Path(WEATHER_PIPELINE).parent / SEALED / kind / f"{name}.dvc"
    rel = os.path.relpath(data, path.parent)
    write_text(path, f"outs:\n- path: {Path(rel).as_posix()}\n")
    return path


def move(source: Path, dest: Path) -> None:
    """Rename ``source`` to ``dest``, replacing what an earlier, unpublished attempt left."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_dir():
        for child in dest.iterdir():
            child.unlink()
        dest.rmdir()
    os.replace(source, dest)


def seal_day(repo: Path, out: Path, day: str, names: list[str]) -> list[Path]:
    """Move day ``day``'s raw files and history partition under sealed/; their .dvc files."""
    raw_day = out / SEALED / "raw" / day
    staging = raw_day.with_name(f".{day}.staging")
    staging.mkdir(parents=True, exist_ok=True)
    for name in names:
        os.replace(repo / WEATHER_RAW_DIR / f"{name}.json", staging / f"{name}.json")
    move(staging, raw_day)
    made = [dvc_file(repo, "raw", day, raw_day)]
    history = out / "history" / f"{day}.parquet"
    if history.exists():
        sealed_history = out / SEALED / "history" / history.name
        move(history, sealed_history)
        made.append(dvc_file(repo, "history", day, sealed_history))
    return made


def seal_months(repo: Path, out: Path, sealed_before: str) -> list[Path]:
    """Move the latest months before ``sealed_before``'s month (no open issuance forecasts them)."""
    made = []
    for path in sorted((out / "latest").glob("*.parquet")):
        if path.stem < sealed_before[:6]:
            sealed = out / SEALED / "latest" / path.name
            move(path, sealed)
            made.append(dvc_file(repo, "latest", path.stem, sealed))
    return made


def without_sealed(state: dict, sealed_before: str) -> dict:
    """The state with the sealed issuances forgotten and the first open day recorded."""
    done = [n for n in state["done"] if n[:8] >= sealed_before]
    recent = {n: f for n, f in state["recent"].items() if n[:8] >= sealed_before}
    return state | {"done": done, "recent": recent, "sealed_before": sealed_before}


def seal(repo: Path) -> list[str]:
    """Seal every processed day before the open window; return the .dvc files written.

    Nothing to seal: nothing written, no DVC call. Else the open outputs are committed
    to ``weather/dvc.lock`` and every new sealed file to DVC's cache in one ``dvc commit``.
    """
    out = repo / WEATHER_DIR
    state_path = out / "state.json"
    names = raw_names(repo / WEATHER_RAW_DIR)
    first_open = first_open_day(names)
    if first_open is None or not state_path.exists():
        return []
    state = load_state(state_path)
    days = sealable_days(names, state, first_open)
    if not days:
        return []
    made = []
    for day in days:
        made += seal_day(repo, out, day, [n for n in names if n[:8] == day])
    sealed_before = next_day(days[-1])
    made += seal_months(repo, out, sealed_before)
    write_json(state_path, without_sealed(state, sealed_before))
    targets = [str(p.relative_to(repo)) for p in made]
    stages = [f"{WEATHER_PIPELINE}:{stage}" for stage in STAGES]
    run_tool(["dvc", "commit", "--force", "--quiet", *targets, *stages], repo)
    print(f"seal: sealed {len(days)} day(s) {days[0]}..{days[-1]} into {len(made)} .dvc file(s)")
    return targets


def next_day(day: str) -> str:
    """The day after ``day`` (YYYYMMDD)."""
    return (datetime.strptime(day, "%Y%m%d") + timedelta(days=1)).strftime("%Y%m%d")
