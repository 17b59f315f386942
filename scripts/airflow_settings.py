"""The settings every local Airflow the project starts shares: binaries, keys, fast scheduling.

Used by ``scripts.airflow_server`` (``make demo``, the end-to-end tests) and by
``scripts.cluster`` (``make cluster``), so each setting is written once.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")
# The default time zone (naive dates on the command line, the scheduler's logs); the
# schedules are unaffected (every DAG's start_date names Asia/Seoul).
DEFAULT_TIMEZONE = "Asia/Seoul"

# (section, key) -> value. Speed on 2 cores: find new DAG files at once, do not re-parse
# them all the time, schedule without idling.
FAST_SCHEDULING = {
    ("dag_processor", "refresh_interval"): "5",
    ("dag_processor", "min_file_process_interval"): "60",
    ("dag_processor", "parsing_processes"): "1",
    ("scheduler", "scheduler_heartbeat_sec"): "2",
    ("scheduler", "scheduler_idle_sleep_time"): "0.5",
    ("scheduler", "enable_health_check"): "False",
}


def as_env(settings: Mapping[tuple[str, str], str]) -> dict[str, str]:
    """``{(section, key): value}`` as the ``AIRFLOW__SECTION__KEY`` variables Airflow reads."""
    return {f"AIRFLOW__{s.upper()}__{k.upper()}": v for (s, k), v in settings.items()}


def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
