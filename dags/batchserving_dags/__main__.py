"""Create what the DAGs need in Airflow's metadata DB: the model repo's pool.

    cd dags && python -m batchserving_dags

Used by the Makefile, the demo, the cluster and the tests. Idempotent. Runs the
``airflow`` beside this interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from batchserving_dags.pool import POOL, POOL_DESCRIPTION, POOL_SLOTS


def create_pool() -> None:
    """``airflow pools set`` the pool (idempotent); exit with airflow's error."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    result = subprocess.run(
        [airflow, "pools", "set", POOL, str(POOL_SLOTS), POOL_DESCRIPTION],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"batchserving_dags: cannot create pool {POOL!r}: {result.stderr.strip()}")


if __name__ == "__main__":
    create_pool()
