"""Batch inference: start-up cost of a scheduled run, and streaming throughput and memory.

1. ``python -m batchserving.serving.predict --refresh`` (prod resolved in the registry, the
   serving cache warm, the file shared to the default DVC remote, a local one as in
   ``make demo``) scoring 5 samples vs a bare
   ``python -c "import joblib; joblib.load(model).predict(X)"`` on the same model (target ≤ 1.5×).
2. Large batch (Parquet in, Parquet out), 5,000,000 rows, each run in its own subprocess:
   streaming throughput vs min(read-only, predict-only) throughput (target ≥ 0.7), and peak RSS
   at 5M rows vs 500k rows (target ≤ 1.2). Read-only streams the same file through
   ``iter_batches`` and discards it; predict-only is ``predict_proba`` on the features already
   in memory, with the same model and ``n_jobs``.

The model is the project's RandomForest (``params.yaml`` ``train``), fitted on Iris here,
registered and assigned to prod with GTO in a temp model repo, and deployed by the same
refresh the scheduled task runs; everything is in a temp dir.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from batchserving import PROJECT_ROOT
from benchmarks.common import Figure, median_seconds

LARGE_ROWS = 5_000_000
SMALL_ROWS = 500_000

READ_ONLY = """
import sys, time, pyarrow.parquet as pq
start = time.perf_counter()
source = pq.ParquetFile(sys.argv[1], pre_buffer=False)  # as batchserving.serving.tables reads
rows = sum(b.num_rows for b in source.iter_batches(int(sys.argv[2])))
print(rows / (time.perf_counter() - start))
"""

PREDICT_ONLY = """
import sys, time, joblib, pandas as pd
from batchserving.training.iris import FEATURES
model = joblib.load(sys.argv[1]); model.n_jobs = int(sys.argv[3])
features = pd.read_parquet(sys.argv[2], columns=FEATURES)
start = time.perf_counter()
model.predict_proba(features)
print(len(features) / (time.perf_counter() - start))
"""

BARE = "import joblib, numpy as np; joblib.load('{model}').predict(np.array({rows}))"


def child(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Run ``cmd`` in its own process: wall seconds, its peak RSS in MiB, its stdout."""
    code = (
        "import resource, subprocess, sys, time, json\n"
        "start = time.perf_counter()\n"
        "out = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True).stdout\n"
        "wall = time.perf_counter() - start\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps([wall, rss, out]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-c", code, *cmd], cwd=cwd, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{result.stderr[-2000:]}")
    wall, rss, out = json.loads(result.stdout)
    return wall, rss, out


def setup(work: Path) -> Path:
    """``work``: a model repo with the project's model registered, in prod and deployed.

    A git + DVC workspace whose ``dvc.lock`` pins the model, GTO tags ``iris-model@v0.0.1``
    and ``iris-model#prod#1`` on it, the model in the DVC cache and deployed into
    ``output/serving`` by the same refresh the scheduled task runs: a warm cache.
    """
    import joblib
    import pandas as pd
    import yaml
    from sklearn.datasets import load_iris

    from batchserving.core.names import ARTIFACT, MODEL_PATH, SERVING_DIR
    from batchserving.core.params import RegistryParams, TrainParams
    from batchserving.registry.versions import ModelVersion, assign_prod, register_version
    from batchserving.serving.deployment import file_md5
    from batchserving.serving.resolve import refresh_serving
    from batchserving.training.iris import CLASSES, FEATURES
    from stages.train import fit_model

    shutil.copy(PROJECT_ROOT / "params.yaml", work / "params.yaml")
    iris = load_iris()
    frame = pd.DataFrame(iris.data, columns=FEATURES)
    frame["species"] = [CLASSES[i] for i in iris.target]
    model_path = work / "model.joblib"
    joblib.dump(fit_model(frame, TrainParams.load(PROJECT_ROOT / "params.yaml")), model_path)
    md5 = file_md5(model_path)
    cached = work / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    dvc = str(Path(sys.executable).with_name("dvc"))  # the environment's, whatever PATH says
    subprocess.run([dvc, "init", "-q"], cwd=work, check=True)
    remote = work.with_name("remote")  # the scheduled run shares its file there
    subprocess.run([dvc, "remote", "add", "-q", "-d", "local", str(remote)], cwd=work, check=True)
    cached.parent.mkdir(parents=True)
    shutil.copy(model_path, cached)
    (work / "dvc.yaml").write_text(f"artifacts:\n  {ARTIFACT}:\n    path: {MODEL_PATH}\n")
    lock = {"schema": "2.0", "stages": {"train": {"outs": [{"path": MODEL_PATH, "md5": md5}]}}}
    (work / "dvc.lock").write_text(yaml.safe_dump(lock))
    identity = RegistryParams.load(work / "params.yaml")
    git_env = {**os.environ, **identity.git_env()}
    subprocess.run(["git", "add", "-A"], cwd=work, check=True, env=git_env)
    subprocess.run(["git", "commit", "-qm", "model"], cwd=work, check=True, env=git_env)
    version = register_version(work, "HEAD", "registered", identity)
    assign_prod(work, ModelVersion(version.version, version.commit), "bench", identity, None)
    os.environ["MODEL_REPO"] = str(work)
    os.environ.pop("MODEL_REPO_URL", None)
    refresh_serving(work)
    return work / SERVING_DIR / "model.joblib"


def make_input(path: Path, rows: int) -> None:
    """Uniform random features in Iris' range, in row groups of 256Ki rows (both sizes alike)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from batchserving.training.iris import FEATURES

    rng = np.random.default_rng(0)
    table = pa.table({c: rng.uniform(0.1, 8.0, rows) for c in FEATURES})
    pq.write_table(table, path, row_group_size=1 << 18)


def startup_figure(work: Path, model: Path) -> Figure:
    rows = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.0, 3.4, 1.5, 0.2]]
    bare = [sys.executable, "-c", BARE.format(model=model, rows=[*rows, rows[0]])]
    ours = [
        sys.executable,
        "-m",
        "batchserving.serving.predict",
        "--refresh",
        "--logical-date",
        "2026-01-01T00:05:00Z",
    ]
    _, _, out = child(ours, work)  # warm the page cache for both
    assert "on the DVC remote" in out, f"the run shared nothing:\n{out}"
    bare_s = median_seconds(lambda: child(bare, work), repeat=3)
    ours_s = median_seconds(lambda: child(ours, work), repeat=3)
    return Figure(
        "5-sample run, prod checked in the registry, shared, warm cache / bare joblib predict",
        ours_s / bare_s,
        1.5,
        f"{ours_s:.2f} s vs {bare_s:.2f} s",
    )


def large_figures(work: Path, model: Path) -> list[Figure]:
    from batchserving.core.params import InferenceParams

    params = InferenceParams.load(work / "params.yaml")
    big, small = work / "big.parquet", work / "small.parquet"
    make_input(big, LARGE_ROWS)
    make_input(small, SMALL_ROWS)

    def score(source: Path) -> tuple[float, float, float]:
        """Wall seconds, peak RSS and the stage's own scoring rate (read + predict + write)."""
        cmd = [sys.executable, "-m", "batchserving.serving.predict", "--input", source.name]
        wall, rss, out = child([*cmd, "--output", f"scored-{source.stem}.parquet"], work)
        match = re.search(r"wrote (\d+) rows .* in ([0-9.]+) s", out)
        assert match, out
        return wall, rss, int(match[1]) / float(match[2])

    _, _, out = child([sys.executable, "-c", READ_ONLY, big.name, str(params.chunk_rows)], work)
    read_rps = float(out)
    predict_only = [sys.executable, "-c", PREDICT_ONLY, str(model), big.name, str(params.n_jobs)]
    predict_rps = float(child(predict_only, work)[2])
    _, small_rss, _ = score(small)
    large_wall, large_rss, stream_rps = score(big)
    floor = min(read_rps, predict_rps)
    return [
        Figure(
            "5M rows: streaming / min(read-only, predict-only)",
            stream_rps / floor,
            0.7,
            f"{stream_rps / 1e3:.0f}k rows/s ({large_wall:.1f} s wall) "
            f"vs read {read_rps / 1e3:.0f}k, "
            f"predict {predict_rps / 1e3:.0f}k rows/s",
            higher_is_better=True,
        ),
        Figure(
            "peak RSS: 5M rows / 500k rows",
            large_rss / small_rss,
            1.2,
            f"{large_rss:.0f} MiB vs {small_rss:.0f} MiB",
        ),
    ]


def main() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        work = Path(tmp) / "repo"
        work.mkdir()
        model = setup(work)
        return [startup_figure(work, model), *large_figures(work, model)]


if __name__ == "__main__":
    from benchmarks.common import print_figures

    print_figures(main())
