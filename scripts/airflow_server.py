"""A real Airflow on 127.0.0.1: scheduler, DAG processor, triggerer, API server (make demo, tests).

Each component is a separate ``airflow`` process in its own process group, all sharing
one ``AIRFLOW_HOME`` (SQLite metadata DB, LocalExecutor), a free API port and the
project's dags folder. The demo runs it on the project's Airflow home (``.airflow/``,
whose ``airflow.cfg`` holds the Fernet key and JWT secret) so that ``make airflow``
shows its runs afterwards; the end-to-end tests run it on a temporary home with secrets
made per session.

Callers talk to the server only through REST API v2 with a token from
``POST /auth/token`` (SimpleAuthManager, user ``admin``, password from the password file:
kept if it already names the user, else written). ``stop()`` ends every process it
started by process group, SIGTERM then SIGKILL, and then any stray descendant still
carrying this server's own marker in its environment (found by pid). The server has a
REST client (``rest``, ``scripts.airflow_api``); process control is ``scripts.processes``'s
and the shared settings ``scripts.airflow_settings``'s, both shared with ``make cluster``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from batchserving.core.atomic import write_private
from scripts.airflow_api import ADMIN, AirflowRestClient
from scripts.airflow_settings import AIRFLOW, PASSWORDS_FILE, fernet_key, local_env
from scripts.processes import free_port, start_process, stop_processes, tail_file

USER = ADMIN
# Every process of one server carries this variable (a value of its own), so that stop()
# finds its stray descendants by pid and never another Airflow on the same home.
MARKER = "BATCHSERVING_AIRFLOW_SERVER"
COMPONENTS = {
    "api-server": ["api-server"],  # port and host from the environment
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    # Deferred tasks, deadline callbacks and human-in-the-loop operators run in it.
    "triggerer": ["triggerer"],
}

# The components whose job heartbeats in the metadata DB (the health endpoint reports them).
HEARTBEATING_JOBS = ("scheduler", "triggerer")


@dataclass
class AirflowServer:
    """One Airflow installation under ``home``; ``start()`` it, ``stop()`` it (always).

    ``fernet`` and ``jwt_secret`` None: the home's ``airflow.cfg`` provides them.
    ``passwords_file`` None: the one ``airflow standalone`` (``make airflow``) reads.
    """

    home: Path
    model_repo: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    fernet: str | None = field(default_factory=fernet_key)
    jwt_secret: str | None = field(default_factory=lambda: secrets.token_hex(32))
    passwords_file: Path | None = None
    marker: str = field(default_factory=lambda: secrets.token_hex(8))

    def __post_init__(self) -> None:
        self._connect()

    def _connect(self) -> None:
        """A REST client with the current password (a new one has no token yet)."""
        self.rest = AirflowRestClient(
            self.url, self.password, diagnostics=self.diagnostics, check_running=self.check_running
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def db_path(self) -> Path:
        return self.home / "airflow.db"

    def env(self) -> dict[str, str]:
        """The environment of every Airflow process (and so of every task)."""
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "MODEL_REPO")) and k != "PYTEST_CURRENT_TEST"
        }
        secrets_env = {
            "AIRFLOW__CORE__FERNET_KEY": self.fernet,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
        }
        return {
            **local_env(self.home, base, api_port=self.port, passwords_file=self.password_path),
            "MODEL_REPO": str(self.model_repo),
            # Connections are stored encrypted (Fernet), as in any real deployment; the
            # scheduler signs task tokens that the API server checks (JWT secret).
            **{k: v for k, v in secrets_env.items() if v},
            MARKER: self.marker,
            **self.extra_env,
        }

    @property
    def password_path(self) -> Path:
        return self.passwords_file or self.home / PASSWORDS_FILE

    def _keep_or_write_password(self) -> None:
        """Use the password file's password for USER if it has one, else write ours."""
        path = self.password_path
        try:
            known = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            known = {}
        if known.get(USER):
            self.password = known[USER]
            self._connect()
            return
        write_private(path, json.dumps({**known, USER: self.password}))

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 180) -> None:
        """Migrate the DB, start the four components, wait until scheduler and triggerer are up."""
        t0 = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(exist_ok=True)
        self._keep_or_write_password()
        self._env = self.env()
        migrate = subprocess.run(
            [AIRFLOW, "db", "migrate"], env=self._env, capture_output=True, text=True
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stderr[-3000:]}")
        self.timings["db_migrate"] = time.monotonic() - t0
        for name, args in COMPONENTS.items():
            log = self.home / f"{name}.out"
            self.procs[name] = start_process([AIRFLOW, *args], self._env, log)
        self.rest.wait(lambda: self._healthy(), timeout, "the API server to answer")
        self.timings["api_up"] = time.monotonic() - t0

    def check_running(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                code = proc.returncode
                raise RuntimeError(f"airflow {name} exited with {code}:\n{self.tail(name)}")

    def _healthy(self) -> bool:
        health = self.rest.health()
        return all(health.get(job, {}).get("status") == "healthy" for job in HEARTBEATING_JOBS)

    def tail(self, name: str, lines: int = 40) -> str:
        return tail_file(self.home / f"{name}.out", lines)

    def stop(self, grace: float = 15) -> list[int]:
        """Stop every process started here (and stray descendants); return pids SIGKILLed."""
        by_pid = {proc.pid: proc for proc in self.procs.values()}
        return stop_processes(
            dict.fromkeys(by_pid),
            marker=(MARKER, self.marker),
            grace=grace,
            reap=lambda pid: by_pid[pid].poll(),
        )

    def task_logs(self) -> Iterator[Path]:
        """Every task log file written under this AIRFLOW_HOME."""
        yield from sorted(p for p in self.logs_dir.glob("dag_id=*/**/*") if p.is_file())

    def diagnostics(self) -> str:
        return "\n".join(f"--- {n} ---\n{self.tail(n)}" for n in self.procs)
