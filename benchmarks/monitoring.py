"""Monitoring: memory over a day's size, and the cost of an ordinary day's run.

1. Peak RSS of monitoring a day of 1,000,000 predicted rows / a day of 100,000 (target
   ≤ 1.3): one Parquet prediction file each, scored by batch scoring itself, monitored in
   its own process (files read in chunks of ``monitoring.read_chunk_rows``, a uniform
   sample of at most ``monitoring.max_sample_rows`` rows tested, the report rendered).
   The reference there is Iris with a forest fitted in the child: the registry's part does
   not grow with the rows.
2. The day's run: ``python -m stages.monitor_predictions`` on a day of 288 scheduled runs
   (1,440 rows) in a real model repo (the project's pipeline run, v0.0.1 registered,
   promoted and deployed; the references read from the registry by md5) / a bare
   interpreter importing the same libraries (pandas, scikit-learn, scipy, pyarrow), the
   floor of any Python stage that uses them (target ≤ 4: DVC's and GTO's imports, the
   registry reads and the 288 files come on top).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from batchserving import PROJECT_ROOT
from benchmarks.common import Figure, median_seconds
from benchmarks.inference import child

LARGE_ROWS = 1_000_000
SMALL_ROWS = 100_000
DAY = "2026-03-01"

MONITOR_FILES = """
import sys
from datetime import date
from pathlib import Path
from sklearn.ensemble import RandomForestClassifier
from batchserving.core.params import MonitoringParams
from batchserving.monitoring.day import monitor_day
from batchserving.monitoring.reference import reference_from
from batchserving.monitoring.report import render
from batchserving.monitoring.summary import summarise
from batchserving.training.iris import FEATURES
from stages.prepare import iris_frame
iris = iris_frame()
model = RandomForestClassifier(n_estimators=10, random_state=0).fit(iris[FEATURES], iris.species)
reference = reference_from(iris, model, "bench")
params = MonitoringParams.load(sys.argv[2])
result = monitor_day(Path(sys.argv[1]), date.fromisoformat(sys.argv[3]), params,
                     lambda version, commit: reference)
render(result, summarise(result, 0.8, params.min_labelled_rows, "report.html"))
print(result.rows)
"""

BARE = "import pandas, pyarrow.csv, scipy.stats, sklearn.ensemble"


def write_day(root: Path, rows: int) -> None:
    """One Parquet prediction file of ``rows`` rows at 00:00 UTC of the day, scored."""
    from datetime import UTC, datetime

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.ensemble import RandomForestClassifier

    from batchserving.serving.predict import prediction_path
    from batchserving.serving.scoring import Lineage, score_file
    from batchserving.training.iris import FEATURES
    from stages.prepare import iris_frame

    iris = iris_frame()
    model = RandomForestClassifier(n_estimators=10, random_state=0)
    model.fit(iris[FEATURES], iris.species)
    rng = np.random.default_rng(0)
    source = root / f"input-{rows}.parquet"
    picks = rng.integers(0, len(iris), rows)
    pq.write_table(pa.table({f: iris[f].to_numpy()[picks] for f in FEATURES}), source)
    target = prediction_path(datetime(2026, 3, 1, 0, 0, tzinfo=UTC), root / f"day-{rows}")
    score_file(
        model, source, target.with_suffix(".parquet"), Lineage("v0.0.1", "a" * 40, "r"), 100_000
    )


def rss_figure(work: Path) -> Figure:
    params = PROJECT_ROOT / "params.yaml"
    rss = {}
    for rows in (SMALL_ROWS, LARGE_ROWS):
        write_day(work, rows)
        cmd = [sys.executable, "-c", MONITOR_FILES, str(work / f"day-{rows}"), str(params), DAY]
        _, rss[rows], out = child(cmd, work)
        assert int(out.strip()) == rows, out
    return Figure(
        "monitor: peak RSS over 1M predicted rows / over 100k",
        rss[LARGE_ROWS] / rss[SMALL_ROWS],
        1.3,
        f"{rss[LARGE_ROWS]:.0f} MiB vs {rss[SMALL_ROWS]:.0f} MiB",
    )


def model_repo(work: Path) -> Path:
    """A clone of the checkout with v0.0.1 trained, registered, promoted, and a day served."""
    repo = work / "model-repo"
    env = {**os.environ, "MODEL_REPO": str(repo), "PYTHONWARNINGS": "ignore"}
    env.pop("MODEL_REPO_URL", None)

    def task(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        return result.stdout.strip().splitlines()[-1]

    task("batchserving.registry.publish", "evaluate")
    task("batchserving.registry.register")
    task(
        "batchserving.selection.promote",
        "promote",
        "--comparison-json",
        task("batchserving.selection.compare"),
    )
    task("scripts.served_day", "--day", DAY)
    return repo


def day_figure(work: Path) -> Figure:
    repo = model_repo(work)
    stage = [sys.executable, "-m", "stages.monitor_predictions"]
    os.environ["MONITOR_DAY"] = DAY
    bare = [sys.executable, "-c", BARE]
    child(stage, repo)  # warm the page cache and the DVC cache lookups
    bare_s = median_seconds(lambda: child(bare, repo), repeat=3)
    ours_s = median_seconds(lambda: child(stage, repo), repeat=3)
    return Figure(
        "monitor: the day's stage (1,440 rows) / bare imports",
        ours_s / bare_s,
        4.0,
        f"{ours_s:.2f} s vs {bare_s:.2f} s",
    )


def main() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as tmp:
        work = Path(tmp)
        return [rss_figure(work), day_figure(work)]


if __name__ == "__main__":
    from benchmarks.common import print_figures

    print_figures(main())
