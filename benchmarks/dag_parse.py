"""DAG parse cost: each DAG file vs a one-``EmptyOperator`` DAG, parsed as the DAG processor does.

Airflow's DAG processor parses a file in a child forked from a process that has already
imported Airflow and the ``airflow.*`` modules the file names. Here the parent does the
same for every file (ours and the baseline), then forks one child per parse; the child
times a ``DagBag`` of that one file. Figure: median(ours) / median(baseline). Target 1.5.
The dags folder is byte-compiled first, as ``make setup`` does (this machine sets
PYTHONDONTWRITEBYTECODE, so without it every parse would compile dags/batchserving_dags again).
"""

from __future__ import annotations

import ast
import compileall
import importlib
import os
import statistics
import struct
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure

DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"
REPEAT = 15
TARGET = 1.5

BASELINE_DAG = '''"""Baseline: one EmptyOperator."""
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="baseline_empty", schedule=None,
         start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul")):
    EmptyOperator(task_id="noop")
'''


def airflow_modules(path: Path) -> set[str]:
    """The ``airflow.*`` modules a file imports (what the DAG processor pre-imports)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("airflow"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow"):
            names.add(node.module)
    return names


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


def main() -> list[Figure]:
    import logging

    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")

    logging.disable(logging.CRITICAL)  # the DagBag's log lines would cost time and noise
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    files = sorted(DAGS_FOLDER.glob("*.py"))
    compileall.compile_dir(DAGS_FOLDER, quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline_empty.py"
        baseline.write_text(BASELINE_DAG)
        importlib.import_module("airflow")
        for module in set().union(*(airflow_modules(f) for f in [baseline, *files])):
            importlib.import_module(module)
        importlib.import_module("airflow.dag_processing.dagbag")
        times: dict[Path, list[float]] = {f: [] for f in [baseline, *files]}
        for _ in range(REPEAT):  # interleaved, so drift in machine load hits all alike
            for path in times:
                bundle = path.parent
                times[path].append(parse_in_child(path, bundle))
        base = statistics.median(times[baseline])
    figures = []
    for path in files:
        ours = statistics.median(times[path])
        figures.append(
            Figure(
                name=f"parse {path.name} / one-EmptyOperator DAG",
                value=ours / base,
                target=TARGET,
                detail=f"{ours * 1000:.1f} ms vs {base * 1000:.1f} ms (median of {REPEAT})",
            )
        )
    return figures
