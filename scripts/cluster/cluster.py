"""The whole cluster: its parts started in order and stopped by pid, and the connections.

``Cluster`` composes the parts (``postgres``, ``redis``, ``seaweedfs``, ``git_server``,
``kma``, ``airflow``) on one ``ClusterState`` and has a REST client of its API server
(``rest``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchserving import PROJECT_ROOT
from scripts.airflow_api import AirflowRestClient
from scripts.cluster.airflow import WORKERS, Airflow
from scripts.cluster.git_server import GitServer
from scripts.cluster.kma import FakeKma
from scripts.cluster.postgres import Postgres, postgres_user
from scripts.cluster.redis import Redis
from scripts.cluster.seaweedfs import SeaweedFS
from scripts.cluster.state import (
    DEFAULT_DATA,
    MARKER,
    ClusterError,
    ClusterState,
    private_dir,
)
from scripts.processes import stop_processes

PORTS = ("postgres", "redis", "s3", "ssh", "api", "kma")
FOLDERS = ("logs", "airflow", "airflow/logs", "git", "workers", "seaweedfs", "redis")


@dataclass
class Cluster:
    """One cluster under ``data``. ``start()``, ``wait_ready()``, ``stop()`` (always)."""

    data: Path = DEFAULT_DATA
    source: Path = PROJECT_ROOT  # git repository whose HEAD seeds the git server
    slack_webhook: str | None = None  # my_webhook's URL; no connection when None
    kma: tuple[str, str] | None = None  # (base URL, key) of the real KMA; None: the fake
    airflow_settings: dict[tuple[str, str], str] = field(default_factory=dict)
    workers: tuple[str, ...] = WORKERS
    worker_concurrency: int = 3
    timings: dict[str, float] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.data = Path(self.data).absolute()
        self.state = ClusterState(self.data)
        self.state.load()
        self.postgres = Postgres(self.state)
        self.redis = Redis(self.state)
        self.seaweedfs = SeaweedFS(self.state)
        self.git_server = GitServer(self.state, Path(self.source).absolute())
        self.fake_kma = FakeKma(self.state)
        self.airflow = Airflow(
            self.state,
            self.postgres,
            self.redis,
            self.git_server,
            self.seaweedfs,
            settings=self.airflow_settings,
            workers=self.workers,
            worker_concurrency=self.worker_concurrency,
        )
        self._connect()

    def _connect(self) -> None:
        """A REST client of the API server on the recorded port (no token yet)."""
        secrets = self.state.secrets
        password = secrets.admin_password if secrets else ""
        self.rest = AirflowRestClient(self.state.url, password, diagnostics=self.state.diagnostics)

    def is_up(self) -> bool:
        state = self.state.running()
        return bool(state) and all(state.values())

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start every part in order, each ready before the next; record every pid."""
        if self.state.pids and any(self.state.running().values()):
            raise ClusterError(f"the cluster in {self.data} is running already: stop it first")
        self.state.pids = {}
        t0 = time.monotonic()
        self.prepare_dirs()
        self.state.load_or_create_secrets()
        for name in PORTS:
            self.state.port(name)
        for name, step in (
            ("postgres", self.postgres.start),
            ("redis", self.redis.start),
            ("seaweedfs", self.seaweedfs.start),
            ("git_server", self.git_server.start),
            ("kma", self._start_kma),
            ("airflow", self._start_airflow),
            ("workers", self.airflow.start_workers),
        ):
            began = time.monotonic()
            step()
            self.timings[name] = time.monotonic() - began
        self.timings["total"] = time.monotonic() - t0

    def wait_ready(self, timeout: float = 180) -> None:
        """Wait until the scheduler and DAG processor are healthy and every worker is ready."""

        def ready() -> bool:
            self.state.check_alive()
            health = self.rest.health()
            parts = ("scheduler", "dag_processor")
            healthy = all(health.get(p, {}).get("status") == "healthy" for p in parts)
            return healthy and all(self.airflow.worker_ready(w) for w in self.workers)

        self.rest.wait(ready, timeout, "the scheduler, the DAG processor and the workers")

    def stop(self, grace: float = 20) -> list[int]:
        """Stop every process this cluster started, by pid; return those that needed SIGKILL.

        SeaweedFS takes about 15 s to exit after SIGTERM; the grace lets it."""
        leaders = {pid: started for pid, started in reversed(self.state.pids.values())}
        killed = stop_processes(
            leaders, marker=(MARKER, str(self.data)), grace=grace, reap=self.state.reap
        )
        self.state.pids = {}
        self.state.procs = {}
        if self.data.is_dir():
            self.state.save()
        return killed

    def prepare_dirs(self) -> None:
        """The data folder and its parts, each readable by the owner only (existing ones
        too: a folder an older cluster made may be wider)."""
        private_dir(self.data)
        if as_user := postgres_user():
            # PostgreSQL runs as its own user: its group may enter (not list) this folder.
            os.chown(self.data, -1, as_user["group"])
            self.data.chmod(0o710)
        for sub in FOLDERS:
            private_dir(self.data / sub)

    def _start_kma(self) -> None:
        if not self.kma:
            self.fake_kma.start()

    def _start_airflow(self) -> None:
        self._connect()  # the port and the password are known now
        self.airflow.start(health=self.rest.health)
        self.airflow.set_connections(self.connections())

    def connections(self) -> dict[str, dict[str, Any]]:
        """The Airflow connections the tasks read (secrets included: handle with care)."""
        git, keys = self.git_server, self.state.secrets
        git_extra = {"private_key": git.private_key.read_text(encoding="utf-8")}
        git_extra["known_hosts"] = git.known_hosts
        kma_url, kma_key = self.kma or (self.state.fake_kma_url, keys.fake_kma_key)
        found = {
            "model_repo_git": {
                "conn_type": "ssh",
                "host": "127.0.0.1",
                "port": self.state.ports["ssh"],
                "login": git.git_user,
                "extra": json.dumps(git_extra),
            },
            "dvc_remote": {
                "conn_type": "aws",
                "login": keys.s3_access_key,
                "password": keys.s3_secret_key,
                "extra": json.dumps({"endpoint_url": self.seaweedfs.s3_endpoint}),
            },
            "kma_api": {"conn_type": "http", "host": kma_url, "password": kma_key},
        }
        if self.slack_webhook:
            found["my_webhook"] = {"conn_type": "slackwebhook", "password": self.slack_webhook}
        return found
