"""What every part of the cluster shares: its data folder, secrets, ports and processes.

``ClusterState`` is one data folder: where each file lives, the secrets (``secrets.json``),
the ports (chosen once, then the same at every start), the workers and the pids recorded
in ``cluster.json``, the environment every process gets, and ``spawn()``/``wait_for()``
that start a part and wait until it is ready. The service
modules (``postgres``, ``redis``, ``seaweedfs``, ``git_server``, ``kma``, ``airflow``)
each start their part through it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchserving import PROJECT_ROOT
from batchserving.core.atomic import write_private
from scripts.airflow_settings import VENV_BIN, fernet_key
from scripts.processes import (
    free_port,
    is_running,
    port_holder,
    port_is_free,
    start_process,
    start_time,
    tail_file,
    wait_until,
)

DEFAULT_DATA = PROJECT_ROOT / ".cluster"
MARKER = "BATCHSERVING_CLUSTER"  # in the environment of every process a cluster starts
# The caller's variables that never reach the cluster's processes: what the user set for
# the embedded default or by hand (MODEL_REPO, AIRFLOW__*, AWS_*, KMA_*, GIT_SSH_COMMAND)
# would override the cluster's own configuration or hand a worker a secret.
CALLER_ONLY = ("AIRFLOW", "MODEL_REPO", "DVC_", "AWS_", "KMA_", "GIT_", "SLACK", "PYTEST_", MARKER)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Every process the cluster starts creates its files and folders for their owner only.
PRIVATE_UMASK = 0o077
OWNER_ONLY = 0o700


class ClusterError(RuntimeError):
    """The cluster cannot start or stop; the message says what to do."""


def need(program: str, package: str) -> str:
    """The path of ``program``; raise naming the Debian package that installs it."""
    path = shutil.which(program, path=f"{SYSTEM_PATH}:{os.environ.get('PATH', '')}")
    if not path:
        raise ClusterError(f"{program} is not installed: `apt-get install {package}`")
    return path


def run(cmd: list[str], what: str, **kwargs: Any) -> str:
    """Run a setup command; on failure raise naming ``what`` with the command's own words."""
    kwargs.setdefault("umask", PRIVATE_UMASK)
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        reason = (result.stderr.strip() or result.stdout.strip()).splitlines()[-8:]
        raise ClusterError(f"{what} failed (`{' '.join(cmd[:3])} ...`):\n" + "\n".join(reason))
    return result.stdout


def private_dir(path: Path) -> Path:
    """``path`` (and its parents) made if missing, the owner's only (an existing one too:
    a folder an older cluster made may be wider)."""
    path.mkdir(mode=OWNER_ONLY, parents=True, exist_ok=True)
    path.chmod(OWNER_ONLY)
    return path


@dataclass
class Secrets:
    """Generated once per data folder, kept in ``secrets.json`` (0600)."""

    s3_access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(9).upper())
    s3_secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    postgres_password: str = field(default_factory=lambda: secrets.token_hex(16))
    redis_password: str = field(default_factory=lambda: secrets.token_hex(16))
    fernet_key: str = field(default_factory=fernet_key)
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    fake_kma_key: str = field(default_factory=lambda: f"cluster+{secrets.token_hex(10)}/Kma==")

    @classmethod
    def load_or_create(cls, path: Path) -> Secrets:
        if path.exists():
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        made = cls()
        write_private(path, json.dumps(made.__dict__, indent=2))
        return made


@dataclass
class ClusterState:
    """One data folder: its paths, secrets, ports, and the processes started on it."""

    data: Path
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, list[int]] = field(default_factory=dict)  # name -> [pid, start time]
    workers: list[str] = field(default_factory=list)  # the Celery workers' names
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    secrets: Secrets | None = None
    fake_kma_url: str | None = None

    def __post_init__(self) -> None:
        self.data = Path(self.data).absolute()

    # --- where things are ----------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.data / "cluster.json"

    @property
    def secrets_file(self) -> Path:
        return self.data / "secrets.json"

    @property
    def home(self) -> Path:
        """AIRFLOW_HOME shared by every Airflow component."""
        return self.data / "airflow"

    @property
    def url(self) -> str:
        """The Airflow API server's (and UI's) URL."""
        return f"http://127.0.0.1:{self.ports.get('api', 0)}"

    def log(self, name: str) -> Path:
        return self.data / "logs" / f"{name}.log"

    def tail(self, name: str, lines: int = 30) -> str:
        return tail_file(self.log(name), lines)

    def diagnostics(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.tail(name)}" for name in self.pids)

    # --- cluster.json and secrets.json ---------------------------------------------------

    def load(self) -> None:
        if self.state_file.exists():
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
            self.ports = {**state.get("ports", {}), **self.ports}
            self.pids = state.get("pids", {})
            self.workers = state.get("workers", [])
            self.fake_kma_url = state.get("fake_kma_url")
        if self.secrets_file.exists():
            self.secrets = Secrets.load_or_create(self.secrets_file)

    def save(self) -> None:
        state = {
            "ports": self.ports,
            "pids": self.pids,
            "workers": self.workers,
            "ui": self.url,
            "fake_kma_url": self.fake_kma_url,
        }
        write_private(self.state_file, json.dumps(state, indent=2))

    def load_or_create_secrets(self) -> Secrets:
        self.secrets = Secrets.load_or_create(self.secrets_file)
        return self.secrets

    def port(self, name: str) -> int:
        """The port recorded for ``name``; a free one, recorded, the first time. Clients
        keep a server's address (a person's clone, its known_hosts line, a bookmarked UI),
        so a port never changes once chosen."""
        if name not in self.ports:
            self.ports[name] = free_port()
            if self.data.is_dir():
                self.save()
        return self.ports[name]

    def check_port_free(self, name: str, part: str) -> None:
        """Raise, naming the port and what holds it, if ``name``'s port is taken."""
        port = self.port(name)
        if not port_is_free(port):
            holder = port_holder(port) or "a connection that has not closed yet"
            raise ClusterError(
                f"port {port} ({name}, recorded for {part} in {self.state_file}) is taken by "
                f"{holder}: stop that process, or remove the port from {self.state_file.name} "
                "to choose a new one (clients of the old address must then be updated)"
            )

    # --- processes -----------------------------------------------------------------------

    def running(self) -> dict[str, bool]:
        """Each recorded process: is it still the process this cluster started?"""
        return {name: is_running(pid, started) for name, (pid, started) in self.pids.items()}

    def check_alive(self) -> None:
        """Raise, with its log, if a recorded process has exited."""
        for name, alive in self.running().items():
            if not alive:
                raise ClusterError(f"{name} exited; its log ({self.log(name)}):\n{self.tail(name)}")

    def reap(self, pid: int) -> None:
        for proc in self.procs.values():
            if proc.pid == pid:
                proc.poll()

    def env(self) -> dict[str, str]:
        """The environment of every process the cluster starts (none of CALLER_ONLY)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(CALLER_ONLY)}
        return {
            **base,
            # The venv first; the caller's PATH after it, as a login shell would have it.
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', SYSTEM_PATH)}",
            "AIRFLOW_HOME": str(self.home),
            "PYTHONUNBUFFERED": "1",
            MARKER: str(self.data),
        }

    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None, **kw) -> None:
        """Start ``name`` in a process group of its own and record its pid."""
        kw.setdefault("umask", PRIVATE_UMASK)
        proc = start_process(cmd, env or self.env(), self.log(name), cwd=PROJECT_ROOT, **kw)
        self.procs[name] = proc
        self.pids[name] = [proc.pid, start_time(proc.pid)]
        self.save()

    def wait_for(self, name: str, ready: Callable[[], Any], timeout: float = 60) -> None:
        """Wait until ``ready()``; fail at once, with its log, if ``name`` has exited."""

        def check() -> bool:
            if not is_running(*self.pids[name]):
                raise ClusterError(f"{name} exited; its log ({self.log(name)}):\n{self.tail(name)}")
            return bool(ready())

        wait_until(check, timeout, name, 0.2, lambda: self.tail(name))
