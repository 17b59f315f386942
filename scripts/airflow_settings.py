"""The one definition of the project's Airflow configuration, and the environment it makes.

Every Airflow the project starts reads it: ``make airflow`` (``python -m
scripts.airflow_settings [--port N] airflow standalone``), ``make run`` and ``make setup``
(the same with ``airflow dags test``, ``airflow db migrate``), ``make demo`` and the end-to-end
tests (``scripts.airflow_server``), and ``make cluster`` (``scripts.cluster``, which adds
PostgreSQL and Celery to ``project_settings()``). Settings are ``{(section, key): value}``;
``as_env()`` turns them into the ``AIRFLOW__SECTION__KEY`` variables Airflow reads.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from batchserving import DAGS_FOLDER, PLUGINS_FOLDER, PROJECT_ROOT
from scripts.airflow_api import ADMIN
from scripts.processes import free_port

VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")
# The default time zone (the UI's clock, naive dates on the command line, the scheduler's
# logs); the schedules are unaffected (every DAG's start_date names Asia/Seoul).
DEFAULT_TIMEZONE = "Asia/Seoul"
# The passwords file `airflow standalone` writes by default: one login for every launcher.
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
UI_PORT = 8080  # make airflow

# Speed on 2 cores: find new DAG files at once, do not re-parse them all the time,
# schedule without idling.
FAST_SCHEDULING = {
    ("dag_processor", "refresh_interval"): "5",
    ("dag_processor", "min_file_process_interval"): "60",
    ("dag_processor", "parsing_processes"): "1",
    ("scheduler", "scheduler_heartbeat_sec"): "2",
    ("scheduler", "scheduler_idle_sleep_time"): "0.5",
    ("scheduler", "enable_health_check"): "False",
}


def project_settings(*, api_port: int, passwords_file: Path) -> dict[tuple[str, str], str]:
    """What every Airflow of the project is configured with, whatever its DB and executor."""
    return {
        ("core", "dags_folder"): str(DAGS_FOLDER),
        # plugins/ui_timezone.py: the UI starts in [core] default_timezone.
        ("core", "plugins_folder"): str(PLUGINS_FOLDER),
        ("core", "load_examples"): "False",
        ("core", "default_timezone"): os.environ.get(
            "AIRFLOW__CORE__DEFAULT_TIMEZONE", DEFAULT_TIMEZONE
        ),
        ("core", "simple_auth_manager_users"): f"{ADMIN}:admin",
        ("core", "simple_auth_manager_passwords_file"): str(passwords_file),
        ("api", "host"): "127.0.0.1",
        ("api", "port"): str(api_port),
        # Without it on a port other than 8080 every task fails ("Workload execution failed").
        ("api", "base_url"): f"http://127.0.0.1:{api_port}",
        ("api", "workers"): "1",
        # 8793/8794 may be taken by another Airflow on this machine.
        ("logging", "worker_log_server_port"): str(free_port()),
        ("logging", "trigger_log_server_port"): str(free_port()),
        **FAST_SCHEDULING,
    }


def local_settings(
    home: Path, *, api_port: int = UI_PORT, passwords_file: Path | None = None
) -> dict[tuple[str, str], str]:
    """One machine: SQLite in ``home`` and the LocalExecutor (make airflow/demo/run, e2e)."""
    return {
        **project_settings(
            api_port=api_port, passwords_file=passwords_file or home / PASSWORDS_FILE
        ),
        ("core", "executor"): "LocalExecutor",
        ("core", "parallelism"): "4",  # 2 cores: a few task processes at a time
        # SQLite has one writer at a time. Its default wait for the lock (5 s) is short on a
        # busy 2-core machine (the scheduler died of "database is locked" in a test run);
        # 15 s stays within a REST client's 30 s request timeout.
        ("database", "sql_alchemy_conn"): f"sqlite:///{home / 'airflow.db'}?timeout=15",
    }


def as_env(settings: Mapping[tuple[str, str], str]) -> dict[str, str]:
    """``{(section, key): value}`` as the ``AIRFLOW__SECTION__KEY`` variables Airflow reads."""
    return {f"AIRFLOW__{s.upper()}__{k.upper()}": v for (s, k), v in settings.items()}


def local_env(
    home: Path,
    base: Mapping[str, str],
    *,
    api_port: int = UI_PORT,
    passwords_file: Path | None = None,
) -> dict[str, str]:
    """``base`` plus what an Airflow process on ``home`` needs: the venv first on PATH (its
    components start ``airflow`` from PATH), ``AIRFLOW_HOME`` and ``local_settings()``."""
    return {
        **base,
        "PATH": os.pathsep.join([str(VENV_BIN), base.get("PATH", "")]),
        "AIRFLOW_HOME": str(home),
        **as_env(local_settings(home, api_port=api_port, passwords_file=passwords_file)),
    }


def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def main(argv: list[str] | None = None) -> None:
    """Exec a command (``airflow standalone``, ``airflow dags test`` ...) on ``$AIRFLOW_HOME``
    (default ``.airflow/``) with the project's settings; the venv's programs come first."""
    parser = argparse.ArgumentParser(prog="python -m scripts.airflow_settings")
    parser.add_argument("--port", type=int, default=UI_PORT, help="the API server's port")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="e.g. airflow standalone")
    args = parser.parse_args(argv)
    if not args.command:
        parser.error("give a command, e.g. `airflow standalone`")
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port}: use a TCP port (1-65535)")
    home = Path(os.environ.get("AIRFLOW_HOME") or PROJECT_ROOT / ".airflow").resolve()
    env = local_env(home, os.environ, api_port=args.port)
    os.execvpe(args.command[0], args.command, env)


if __name__ == "__main__":
    main()
