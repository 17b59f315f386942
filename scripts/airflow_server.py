"""A real Airflow on 127.0.0.1: scheduler, DAG processor, API server (``make demo``, tests).

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
carrying this server's own marker in its environment (found by pid).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")
USER = "admin"
# Every process of one server carries this variable (a value of its own), so that stop()
# finds its stray descendants by pid and never another Airflow on the same home.
MARKER = "BATCHSERVING_AIRFLOW_SERVER"
# The default time zone (naive dates on the command line, the scheduler's logs); the
# schedules are unaffected (every DAG's start_date names Asia/Seoul).
DEFAULT_TIMEZONE = "Asia/Seoul"
FINISHED = {"success", "failed"}
COMPONENTS = {
    "api-server": ["api-server"],  # port and host from the environment
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@dataclass
class AirflowServer:
    """One Airflow installation under ``home``; ``start()`` it, ``stop()`` it (always).

    ``fernet`` and ``jwt_secret`` None: the home's ``airflow.cfg`` provides them.
    ``passwords_file`` None: ``home/passwords.json``.
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
    _token: str | None = None

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
            **base,
            "PATH": os.pathsep.join([str(VENV_BIN), base.get("PATH", "")]),
            "AIRFLOW_HOME": str(self.home),
            "MODEL_REPO": str(self.model_repo),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",  # 2 cores: a few task processes at a time
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": os.environ.get(
                "AIRFLOW__CORE__DEFAULT_TIMEZONE", DEFAULT_TIMEZONE
            ),
            # Connections are stored encrypted (Fernet), as in any real deployment; the
            # scheduler signs task tokens that the API server checks (JWT secret).
            **{k: v for k, v in secrets_env.items() if v},
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.password_path),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            # Without it on a port other than 8080 every task fails ("Workload execution failed").
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            # 8793/8794 may be taken by another Airflow on this machine.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # Speed on 2 cores: find the files at once, do not re-parse them all the time.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            MARKER: self.marker,
            **self.extra_env,
        }

    @property
    def password_path(self) -> Path:
        return self.passwords_file or self.home / "passwords.json"

    def _keep_or_write_password(self) -> None:
        """Use the password file's password for USER if it has one, else write ours."""
        path = self.password_path
        try:
            known = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            known = {}
        if known.get(USER):
            self.password = known[USER]
            return
        path.write_text(json.dumps({**known, USER: self.password}), encoding="utf-8")
        path.chmod(0o600)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 180) -> None:
        """Migrate the DB, start the three components, wait until the API answers."""
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
            out = open(self.home / f"{name}.out", "wb")  # noqa: SIM115 - owned by the process
            self.procs[name] = subprocess.Popen(
                [AIRFLOW, *args],
                env=self._env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: killpg ends it and its children
            )
        self._wait(lambda: self._healthy(), timeout, "the API server to answer")
        self.timings["api_up"] = time.monotonic() - t0

    def _healthy(self) -> bool:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                code = proc.returncode
                raise RuntimeError(f"airflow {name} exited with {code}:\n{self.tail(name)}")
        try:
            health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).json()
        except (requests.ConnectionError, requests.Timeout, ValueError):
            return False
        return health.get("scheduler", {}).get("status") == "healthy"

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.home / f"{name}.out"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 15) -> list[int]:
        """Stop every process started here (and stray descendants); return pids SIGKILLed."""
        killed: list[int] = []
        for proc in self.procs.values():
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                killed.append(proc.pid)
                proc.wait(timeout=10)
            # The group may outlive its leader (task runners): end what is left of it.
            _signal_group(proc.pid, signal.SIGKILL)
        for pid in pids_with_env(MARKER, self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        return killed

    # --- REST API v2 -----------------------------------------------------------------------

    def token(self) -> str:
        if self._token is None:
            resp = requests.post(
                f"{self.url}/auth/token",
                json={"username": USER, "password": self.password},
                timeout=30,
            )
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2{path}``; raise with the body on an error status."""
        resp = requests.request(
            method,
            f"{self.url}/api/v2{path}",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
            **kwargs,
        )
        if resp.status_code >= 400:
            raise AssertionError(f"{method} {path}: {resp.status_code} {resp.text[:1000]}")
        return resp.json() if resp.content else None

    def add_pool(self, name: str, slots: int, description: str) -> None:
        self.api("POST", "/pools", json={"name": name, "slots": slots, "description": description})

    def add_connection(self, conn_id: str, conn_type: str, **fields: Any) -> None:
        body = {"connection_id": conn_id, "conn_type": conn_type, **fields}
        self.api("POST", "/connections", json=body)

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.api("GET", "/dags", params={"limit": 100})["dags"]}

    def import_errors(self) -> list[dict]:
        return self.api("GET", "/importErrors", params={"limit": 100})["import_errors"]

    def wait_for_dags(self, expected: set[str], timeout: float = 120) -> set[str]:
        """Wait until the DAG processor has serialized every DAG in ``expected`` (or errors)."""
        self._wait(lambda: expected <= self.dag_ids() or self.import_errors(), timeout, "DAGs")
        return self.dag_ids()

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, run_id: str, attempts: int = 5) -> str:
        """Create a run. SQLite has one writer: four triggers at the same moment, beside a
        busy scheduler, can meet "database is locked" (HTTP 500), so a 500 is retried a few
        times; a retry that finds the run already created (409) counts as created."""
        now = datetime.now(UTC).isoformat()
        body = {"dag_run_id": run_id, "logical_date": now}
        for attempt in range(1, attempts + 1):
            try:
                return self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]
            except AssertionError as exc:
                if attempt > 1 and ": 409 " in str(exc):
                    return run_id
                if ": 500 " not in str(exc) or attempt == attempts:
                    raise
                time.sleep(2 * attempt)
        raise AssertionError("unreachable")

    def runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.api("GET", path)["task_instances"]

    def wait_for_runs(self, runs: dict[str, str], timeout: float) -> dict[str, dict]:
        """Wait until each ``{dag_id: run_id}`` is finished; return the runs by dag_id."""
        done: dict[str, dict] = {}

        def finished() -> bool:
            for dag_id, run_id in runs.items():
                if dag_id not in done:
                    run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
                    if run["state"] in FINISHED:
                        done[dag_id] = run
            return len(done) == len(runs)

        self._wait(finished, timeout, f"runs {runs}", poll=1.0)
        return done

    def wait_until_idle(self, dag_ids: set[str], timeout: float) -> list[dict]:
        """Wait until no run of ``dag_ids`` is queued or running; return all their runs."""

        def idle() -> bool:
            return all(r["state"] in FINISHED for d in dag_ids for r in self.runs(d))

        self._wait(idle, timeout, "all runs to finish", poll=1.0)
        return [r for d in dag_ids for r in self.runs(d)]

    def task_logs(self) -> Iterator[Path]:
        """Every task log file written under this AIRFLOW_HOME."""
        yield from sorted(p for p in self.logs_dir.glob("dag_id=*/**/*") if p.is_file())

    def _wait(self, ready, timeout: float, what: str, poll: float = 0.5) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(poll)
        tails = "\n".join(f"--- {n} ---\n{self.tail(n)}" for n in self.procs)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def pids_with_env(name: str, value: str) -> list[int]:
    """Pids of live processes whose environment has ``name=value`` (ours to stop)."""
    needle = f"{name}={value}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids
