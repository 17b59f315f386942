"""Create what the project needs in Airflow's metadata DB: the ``model_repo`` pool.

    python -m batchserving.core.airflow_setup

Used by the Makefile, the demo, the cluster and the tests, so the pool is defined once
(``batchserving.core.names``). Runs the ``airflow`` beside this interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from batchserving.core.names import POOL, POOL_DESCRIPTION, POOL_SLOTS


def create_pool() -> None:
    """``airflow pools set`` the project's pool (idempotent); exit with airflow's error."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    result = subprocess.run(
        [airflow, "pools", "set", POOL, str(POOL_SLOTS), POOL_DESCRIPTION],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"airflow_setup: cannot create pool {POOL!r}: {result.stderr.strip()}")


if __name__ == "__main__":
    create_pool()
