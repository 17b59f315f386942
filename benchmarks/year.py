"""A year of operation: a fresh worker's crawling_weather run after a year / after a day.

Two model repos are made by script, never by waiting, each as a git server (a bare
repository) and a DVC remote (a directory):

- *a day*: 24 hourly issuances processed, 24 weather versions on ``data/weather``, one
  model version;
- *a year*: 8,760 issuances, 8,760 weather versions, 1,000 model versions (commits on
  ``main`` tagged ``iris-model@vX.Y.Z`` as GTO tags them).

The store is laid out as the hourly runs leave it (``batchserving.weather.seal``): the open
days' raw files come from the fake KMA's generator and are processed by the stage's own
code; the sealed days are ``.dvc`` files on the data tip, one for each day's raw
directory and history partition and one for each past month. A run never reads a sealed
day, so they are built once: one real day is processed and sealed, and every other
sealed day's ``.dvc`` file names that day's objects at its own path (a full
``dvc pull -R weather`` of the bench repo works). The git history is written with
``git fast-import`` (the data versions' lock files are the real one for the newest, and
marked variants of it before). Then, on brand-new
workspaces, the two tasks of ``crawling_weather`` run as the DAG runs them against a
local fake KMA, for the next hour, day and year alternately:

- ``cold start``: the first task, ``fetch`` (clone, sync, the DVC pull its stage needs,
  the stage, the data version's commit and push);
- ``weather``: the whole run, ``fetch`` then ``preprocess``, each on a workspace of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from batchserving import PROJECT_ROOT
from batchserving.core.names import ARTIFACT, WEATHER_DIR, WEATHER_LOCK, WEATHER_PIPELINE
from batchserving.weather.fake_kma import FakeKma
from batchserving.weather.issuance import Issuance
from batchserving.weather.seal import first_open_day, seal_day, seal_months, without_sealed
from batchserving.weather.store import update
from benchmarks.common import Figure
from benchmarks.weather import FIRST, write_raw

DAY, YEAR = 24, 8_760
MODEL_VERSIONS = {DAY: 1, YEAR: 1_000}
PAIRS = 2
BIN = Path(sys.executable).parent
IDENT = "Bench <bench@example.invalid> 1767225600 +0900"
PUBLISH = [sys.executable, "-m", "batchserving.registry.publish", "--pipeline", "weather"]


def sh(args: list[str], cwd: Path, env: dict | None = None, stdin: str | None = None) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed: {result.stderr[-2000:]}")
    return result.stdout


def project_copy(dest: Path) -> None:
    """The project's working tree (tracked and new files) as one commit on main."""
    listing = sh(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], PROJECT_ROOT
    )
    for rel in filter(None, listing.split("\0")):
        if (PROJECT_ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / rel, dest / rel)
    sh(["git", "init", "-q", "-b", "main"], dest)
    sh(["git", "add", "-A"], dest)
    sh(["git", "-c", "user.name=B", "-c", "user.email=b@x", "commit", "-qm", "project"], dest)


def fast_import_history(seed: Path, hours: int, lock: str, sealed: dict[str, str]) -> None:
    """``main`` gains the model versions (tagged), ``data/weather`` one version an hour."""
    stream = []

    def blob(text: str) -> str:
        return f"data {len(text.encode())}\n{text}"

    head = sh(["git", "rev-parse", "HEAD"], seed).strip()
    parent = head
    for n in range(1, MODEL_VERSIONS[hours] + 1):
        stream += [f"commit refs/heads/main\nmark :{n}\ncommitter {IDENT}\n", blob(f"v{n}\n")]
        stream += [f"from {parent}\n" if n == 1 else "", "M 100644 inline VERSIONS\n"]
        stream += [blob(f"model version {n}\n")]
        stream += [f"tag {ARTIFACT}@v0.0.{n}\nfrom :{n}\ntagger {IDENT}\n", blob("registered\n")]
        parent = f":{n}"
    main_mark = parent
    for h in range(1, hours + 1):
        mark = 100_000 + h
        text = lock if h == hours else f"# data version {h}\n{lock}"
        stream += [f"commit refs/heads/data/weather\nmark :{mark}\ncommitter {IDENT}\n"]
        stream += [blob(f"crawling_weather hour {h}\n")]
        stream += [f"from {main_mark}\n" if h == 1 else f"from :{mark - 1}\nmerge {main_mark}\n"]
        stream += [f"M 100644 inline {WEATHER_LOCK}\n", blob(text)]
        if h == hours:
            for path, content in sorted(sealed.items()):
                stream += [f"M 100644 inline {path}\n", blob(content)]
    sh(["git", "fast-import", "--quiet"], seed, stdin="".join(stream) + "done\n")


def sealed_days(seed: Path, hours: int, env: dict[str, str]) -> dict[str, str]:
    """The sealed days' and months' ``.dvc`` files (path -> text) before the open window.

    The first day is processed and sealed for real, in a copy of the seed; the others
    name its objects at their own paths.
    """
    names = [Issuance(FIRST.at + timedelta(hours=n)).name for n in range(hours)]
    first_open = first_open_day(names)
    days = sorted({n[:8] for n in names if n[:8] < first_open})
    if not days:
        return {}
    out = seed / WEATHER_DIR
    for n in range(24):
        write_raw(out / "raw", Issuance(FIRST.at + timedelta(hours=n)))
    update(out / "raw", out)
    (out / "latest" / f"{days[0][:6]}.parquet").rename(out / "latest" / "000000.parquet")
    real = seal_day(seed, out, days[0], names[:24]) + seal_months(seed, out, "000001")
    sh(["dvc", "commit", "--force", "--quiet", *(str(p) for p in real)], seed, env)
    shutil.rmtree(out / "history")
    shutil.rmtree(out / "latest")
    (out / "state.json").unlink()
    raw, history, month = (p.read_text(encoding="utf-8") for p in real)
    sealed = {}
    for day in days:
        sealed[f"weather/sealed/raw/{day}.dvc"] = raw.replace(days[0], day)
        sealed[f"weather/sealed/history/{day}.dvc"] = history.replace(days[0], day)
    for month_name in sorted({d[:6] for d in days if d[:6] < first_open[:6]}):
        sealed[f"weather/sealed/latest/{month_name}.dvc"] = month.replace("000000", month_name)
    for path in real:
        path.unlink()
    return sealed


def make_history(root: Path, hours: int) -> dict[str, str]:
    """A git server and DVC remote after ``hours`` of weather; the environment naming them."""
    seed, server, remote = root / "seed", root / "server.git", root / "remote"
    seed.mkdir(parents=True)
    project_copy(seed)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    sh(["dvc", "remote", "add", "--local", "-d", "bench", str(remote)], seed, env)
    sealed = sealed_days(seed, hours, env)
    out = seed / WEATHER_DIR
    last = [Issuance(FIRST.at + timedelta(hours=n)) for n in range(hours)]
    first_open = first_open_day([i.name for i in last])
    for issuance in last:
        if issuance.base_date >= first_open:
            write_raw(out / "raw", issuance)
    update(out / "raw", out)
    if sealed:
        state = json.loads((out / "state.json").read_text(encoding="utf-8"))
        (out / "state.json").write_text(json.dumps(without_sealed(state, first_open)))
    sh(["dvc", "commit", "--force", "--quiet", WEATHER_PIPELINE], seed, env)
    lock = (seed / WEATHER_LOCK).read_text(encoding="utf-8")
    (seed / WEATHER_LOCK).unlink()
    fast_import_history(seed, hours, lock, sealed)
    sh(["git", "checkout", "--quiet", "data/weather", "--", "weather"], seed)
    sh(["dvc", "push", "--quiet", "--recursive", "weather"], seed, env)
    sh(["git", "clone", "--quiet", "--bare", "--mirror", str(seed), str(server)], root)
    sh(["git", "gc", "--quiet"], server)
    shutil.rmtree(seed)
    return {
        **env,
        "MODEL_REPO_URL": server.as_uri(),
        "DVC_REMOTE_URL": str(remote),
        "AIRFLOW_CTX_DAG_ID": "crawling_weather",
    }


def timed_task(env: dict[str, str], workspace: Path, stage: str, extra: dict) -> float:
    """Seconds for one crawling_weather task on the brand-new workspace ``workspace``."""
    task_env = {**env, **extra, "MODEL_REPO": str(workspace), "AIRFLOW_CTX_DAG_RUN_ID": stage}
    start = time.perf_counter()
    sh([*PUBLISH, "--single-item", stage], PROJECT_ROOT, task_env)
    return time.perf_counter() - start


def weather_run(env: dict[str, str], root: Path, kma: FakeKma, hour: int) -> tuple[float, float]:
    """(fetch, fetch + preprocess) seconds of the run for hour ``hour``, on fresh workspaces."""
    run_at = (FIRST.at + timedelta(hours=hour, minutes=20)).isoformat()
    kma_env = {"KMA_SERVICE_KEY": kma.key, "KMA_BASE_URL": kma.base_url, "WEATHER_RUN_AT": run_at}
    fetch = timed_task(env, root / f"fetch-{hour}", "fetch_weather", kma_env)
    preprocess = timed_task(env, root / f"preprocess-{hour}", "preprocess_weather", {})
    return fetch, fetch + preprocess


def remote_bytes(remote: Path) -> int:
    """The DVC remote's size in bytes (a directory)."""
    return sum(p.stat().st_size for p in remote.rglob("*") if p.is_file())


def main() -> list[Figure]:
    root = Path(tempfile.mkdtemp(prefix="bench-year-"))
    try:
        started = time.perf_counter()
        envs = {hours: make_history(root / str(hours), hours) for hours in (DAY, YEAR)}
        setup_s = time.perf_counter() - started
        runs: dict[int, list[tuple[float, float]]] = {DAY: [], YEAR: []}
        added: dict[int, int] = {DAY: 0, YEAR: 0}  # bytes the runs added to the DVC remote
        with FakeKma() as kma:
            for pair in range(PAIRS):
                for hours in (DAY, YEAR):
                    before = remote_bytes(Path(envs[hours]["DVC_REMOTE_URL"]))
                    runs[hours].append(
                        weather_run(envs[hours], root / str(hours), kma, hours + pair)
                    )
                    added[hours] += remote_bytes(Path(envs[hours]["DVC_REMOTE_URL"])) - before
    finally:
        shutil.rmtree(root, ignore_errors=True)
    day, year = ([min(t[i] for t in runs[h]) for i in (0, 1)] for h in (DAY, YEAR))
    cold, whole = year[0] / day[0], year[1] / day[1]
    note = f"best of {PAIRS}; histories made in {setup_s:.0f} s"
    pushed = f"a run adds {added[YEAR] / PAIRS / 1e3:.0f} KB vs {added[DAY] / PAIRS / 1e3:.0f} KB"
    return [
        Figure(
            "weather: a fresh worker's run after a year / after a day",
            whole,
            1.5,
            f"(fetch + preprocess: {year[1]:.1f} s vs {day[1]:.1f} s; {pushed} to the remote; "
            f"{note})",
        ),
        Figure(
            "cold start: a new worker's first task after a year / after a day",
            cold,
            1.5,
            f"(clone + pull + fetch: {year[0]:.1f} s vs {day[0]:.1f} s, {note})",
        ),
    ]
