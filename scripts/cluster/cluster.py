"""The whole cluster: its parts started in order, restarted one by one, stopped by pid.

``Cluster`` composes the parts (``postgres``, ``redis``, ``seaweedfs``, ``git_server``,
``kma``, ``airflow``) on one ``ClusterState``, names each process it runs (``parts()``:
the servers, Airflow's components, the workers), makes the connections, and has a REST
client of its API server (``rest``).
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
from scripts.cluster.airflow import COMPONENTS, DEFAULT_WORKERS, Airflow, worker_names
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

FOLDERS = ("logs", "airflow", "airflow/logs", "git", "workers", "seaweedfs", "redis")
# The parts in the order they start; the workers (worker-1 .. worker-N) come last.
SERVERS = ("postgres", "redis", "seaweedfs", "sshd", "fake-kma")
PARTS = (*SERVERS, *COMPONENTS)
WITH_THE_DB = ("scheduler", "triggerer")  # restarted with PostgreSQL
ALIASES = {"git-server": "sshd", "kma": "fake-kma", "s3": "seaweedfs", "db": "postgres"}


@dataclass
class Cluster:
    """One cluster under ``data``. ``start()``, ``wait_ready()``, ``stop()`` (always);
    ``restart(parts)`` and ``restart_down_parts()`` for one part or the ones that exited.

    ``worker_count``: how many Celery workers; None keeps the set ``cluster.json`` records
    (two for a new cluster). ``workers`` names them."""

    data: Path = DEFAULT_DATA
    source: Path = PROJECT_ROOT  # git repository whose HEAD seeds the git server
    slack_webhook: str | None = None  # my_webhook's URL; no connection when None
    kma: tuple[str, str] | None = None  # (base URL, key) of the real KMA; None: the fake
    airflow_settings: dict[tuple[str, str], str] = field(default_factory=dict)
    worker_count: int | None = None
    worker_concurrency: int = 3
    timings: dict[str, float] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.data = Path(self.data).absolute()
        self.state = ClusterState(self.data)
        self.state.load()
        if self.worker_count is not None:
            self.state.workers = worker_names(self.worker_count)
        elif not self.state.workers:
            self.state.workers = worker_names(DEFAULT_WORKERS)
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
            worker_concurrency=self.worker_concurrency,
        )
        self._connect()

    @property
    def workers(self) -> list[str]:
        return self.state.workers

    def _connect(self) -> None:
        """A REST client of the API server on the recorded port (no token yet)."""
        secrets = self.state.secrets
        password = secrets.admin_password if secrets else ""
        self.rest = AirflowRestClient(self.state.url, password, diagnostics=self.state.diagnostics)

    def parts(self) -> list[str]:
        """Every part this cluster runs, in start order."""
        return [p for p in PARTS if p != "fake-kma" or not self.kma] + self.workers

    def part_name(self, name: str) -> str:
        """``name`` (or its alias) as one of ``parts()``; raise naming the choices."""
        part = ALIASES.get(name, name)
        if part not in self.parts():
            raise ClusterError(f"no part {name[:40]!r}: choose one of {', '.join(self.parts())}")
        return part

    def is_up(self) -> bool:
        return not self.down_parts()

    def down_parts(self) -> list[str]:
        """The parts with no live process: exited, killed, or never started."""
        running = self.state.running()
        return [part for part in self.parts() if not running.get(part)]

    def extra_workers(self) -> list[str]:
        """Recorded workers beyond the wanted number (``--workers`` lowered)."""
        wanted = set(self.parts())
        return [
            name for name in self.state.pids if name.startswith("worker-") and name not in wanted
        ]

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start every part in order, each ready before the next; record every pid."""
        if self.state.pids and any(self.state.running().values()):
            raise ClusterError(f"the cluster in {self.data} is running already: stop it first")
        self.state.pids = {}
        t0 = time.monotonic()
        self.prepare_dirs()
        self.state.load_or_create_secrets()
        for part in self.parts():
            for name in self.port_names(part):
                self.state.port(name)
        self._connect()  # the port and the password are known now
        for part in self.parts():
            began = time.monotonic()
            if part == "api-server":
                self.airflow.prepare()
                self.airflow.set_connections(self.connections())
            self.start_part(part)
            self.timings[part] = time.monotonic() - began
        for worker in self.workers:
            self.airflow.wait_for_worker(worker)
        self.timings["total"] = time.monotonic() - t0

    def start_part(self, part: str) -> None:
        """Start one part on its recorded ports (each checked free first)."""
        for name in self.port_names(part):
            self.state.check_port_free(name, part)
        starts = {
            "postgres": self.postgres.start,
            "redis": self.redis.start,
            "seaweedfs": self.seaweedfs.start,
            "sshd": self.git_server.start,
            "fake-kma": self.fake_kma.start,
        }
        if part in starts:
            starts[part]()
        elif part in COMPONENTS:
            self.airflow.start_component(part, health=self.rest.health)
        else:
            self.airflow.start_worker(part)

    def port_names(self, part: str) -> list[str]:
        """The names of the ports ``part`` listens on (the workers serve no log: none)."""
        return {
            "postgres": ["postgres"],
            "redis": ["redis"],
            "seaweedfs": self.seaweedfs.port_names,
            "sshd": ["ssh"],
            "fake-kma": ["kma"],
            "api-server": ["api"],
        }.get(part, [])

    def restart(self, parts: list[str]) -> list[str]:
        """Stop each of ``parts`` (by pid, whatever is left of it) and start it again, in
        start order; return them. The metadata DB goes down last and is back before the
        rest starts; the scheduler and the triggerer go with it (seen here: they exit
        when their connection is cut, the API server and DAG processor reconnect)."""
        if "postgres" in parts:
            parts = [*parts, *WITH_THE_DB]
        ordered = [p for p in self.parts() if p in parts]
        stopping = [p for p in ordered if p != "postgres"]
        self.stop_parts(stopping)
        if "postgres" in ordered:
            self.postgres.stop()
            self.state.pids.pop("postgres", None)
        for part in ordered:
            self.start_part(part)
        for worker in (p for p in ordered if p in self.workers):
            self.airflow.wait_for_worker(worker)
        return ordered

    def restart_down_parts(self) -> list[str]:
        """Restart the parts that are down (and stop workers no longer wanted); the rest keep
        running, their tasks too. Return the parts restarted."""
        self.stop_parts(self.extra_workers())
        return self.restart(self.down_parts())

    def wait_ready(self, timeout: float = 180) -> None:
        """Wait until the scheduler, DAG processor and triggerer are healthy and every worker
        is ready."""

        def ready() -> bool:
            self.state.check_alive()
            health = self.rest.health()
            parts = ("scheduler", "dag_processor", "triggerer")
            healthy = all(health.get(p, {}).get("status") == "healthy" for p in parts)
            return healthy and all(self.airflow.worker_ready(w) for w in self.workers)

        self.rest.wait(ready, timeout, "the scheduler, DAG processor, triggerer and workers")

    def stop_parts(self, parts: list[str], grace: float = 20) -> list[int]:
        """Stop ``parts`` (SIGTERM, then SIGKILL after ``grace``) by pid; forget their pids."""
        recorded = [p for p in parts if p in self.state.pids]
        leaders = {self.state.pids[p][0]: self.state.pids[p][1] for p in recorded}
        killed = stop_processes(leaders, grace=grace, reap=self.state.reap) if leaders else []
        for part in recorded:
            self.state.pids.pop(part)
            self.state.procs.pop(part, None)
        if recorded and self.data.is_dir():
            self.state.save()
        return killed

    def stop(self, grace: float = 20) -> list[int]:
        """Stop every process this cluster started, by pid; return those that needed SIGKILL.

        Its clients first (SeaweedFS takes about 15 s to exit after SIGTERM; the grace lets
        it), then the metadata DB with a fast shutdown, then any stray process that carries
        the cluster's marker."""
        others = [name for name in reversed(self.state.pids) if name != "postgres"]
        killed = self.stop_parts(others, grace)
        killed += self.postgres.stop()
        killed += stop_processes({}, marker=(MARKER, str(self.data)), reap=self.state.reap)
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
