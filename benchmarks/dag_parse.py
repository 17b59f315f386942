"""DAG parse cost: each DAG file vs a one-``EmptyOperator`` DAG, parsed as the DAG processor does.

Airflow's DAG processor forks the child that parses a file from a parent that has
pre-imported the ``airflow.*`` modules that file names at its top level
(``parsing_pre_import_modules``, with Airflow's own scan, ``iter_airflow_imports``): not
those its helper modules import, which every parse pays. Here each DAG file gets a fresh
parent interpreter that imports Airflow and pre-imports exactly the modules that file and
the baseline name; it then forks one child per parse, baseline and DAG file alternately,
each child timing a ``DagBag`` of its one file. Like the DAG processor's manager, the
parent freezes its objects (``gc.freeze``) before forking. The figure is the median of the pair
ratios (file / the baseline parsed just before it). Target 2.0: no heavy import at parse
(a DAG file with pandas and sklearn at its top parses at about 200). The dags folder, the
package (a parse imports its names) and the baseline are byte-compiled first, as
``make setup`` does and as Python does by itself on first import where
PYTHONDONTWRITEBYTECODE is not set (this machine sets it: without the byte code every parse
would compile those files again).
"""

from __future__ import annotations

import compileall
import gc
import importlib
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batchserving import DAGS_FOLDER, PROJECT_ROOT
from benchmarks.common import Figure

PAIRS = 41  # (baseline, file) parses per DAG file
TARGET = 2.0

BASELINE_DAG = '''"""Baseline: one EmptyOperator."""
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="baseline_empty", schedule=None,
         start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul")):
    EmptyOperator(task_id="noop")
'''


def parse_in_child(path: Path, bundle: Path) -> float:
    """Fork; the child parses ``path`` and reports the seconds it took."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        from airflow.dag_processing.dagbag import BundleDagBag

        start = time.perf_counter()
        bag = BundleDagBag(dag_folder=path, bundle_path=bundle)
        elapsed = time.perf_counter() - start
        ok = not bag.import_errors and bag.dags
        os.write(write_fd, struct.pack("d", elapsed if ok else -1.0))
        os._exit(0)
    os.close(write_fd)
    data = os.read(read_fd, 8)
    os.close(read_fd)
    os.waitpid(pid, 0)
    (elapsed,) = struct.unpack("d", data)
    if elapsed < 0:
        raise RuntimeError(f"{path} failed to parse")
    return elapsed


def measure_pairs(path: Path, baseline: Path) -> list[tuple[float, float]]:
    """In this fresh interpreter: pre-import as the DAG processor does, then time pairs."""
    importlib.import_module("airflow")
    from airflow.utils.file import iter_airflow_imports

    for module in {*iter_airflow_imports(str(path)), *iter_airflow_imports(str(baseline))}:
        importlib.import_module(module)
    importlib.import_module("airflow.dag_processing.dagbag")
    # As the DAG processor's manager does before it forks parsers: without it each child
    # starts with the parent's collector counts and may pay a full collection of the
    # parent's heap in the middle of a parse.
    gc.freeze()
    return [
        (parse_in_child(baseline, baseline.parent), parse_in_child(path, path.parent))
        for _ in range(PAIRS)
    ]


def pairs_in_fresh_parent(path: Path, baseline: Path, env: dict[str, str]) -> list[list[float]]:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.dag_parse", str(path), str(baseline)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"parsing {path} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> list[Figure]:
    files = sorted(DAGS_FOLDER.glob("*.py"))
    compileall.compile_dir(DAGS_FOLDER, quiet=1)  # the DAG files and their helpers
    compileall.compile_dir(PROJECT_ROOT / "batchserving", quiet=1)  # a parse imports its names
    env = {
        **os.environ,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        "AIRFLOW_HOME": os.environ.get("AIRFLOW_HOME") or tempfile.mkdtemp(prefix="bench-af-"),
    }
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline_empty.py"
        baseline.write_text(BASELINE_DAG)
        compileall.compile_file(baseline, quiet=1)
        for path in files:
            pairs = pairs_in_fresh_parent(path, baseline, env)
            base_ms = statistics.median(b for b, _ in pairs) * 1000
            ours_ms = statistics.median(f for _, f in pairs) * 1000
            figures.append(
                Figure(
                    name=f"parse {path.name} / one-EmptyOperator DAG",
                    value=statistics.median(f / b for b, f in pairs),
                    target=TARGET,
                    detail=f"{ours_ms:.1f} ms vs {base_ms:.1f} ms (median of {PAIRS} pair ratios)",
                )
            )
    return figures


if __name__ == "__main__":
    import logging

    logging.disable(logging.CRITICAL)  # the DagBag's log lines would cost time and noise
    print(json.dumps(measure_pairs(Path(sys.argv[1]), Path(sys.argv[2]))))
