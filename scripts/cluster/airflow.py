"""Airflow on the cluster: the API server, scheduler, DAG processor, triggerer, Celery workers.

Every component reads one ``AIRFLOW_HOME/airflow.cfg`` (PostgreSQL, the Redis broker,
shared Fernet key and JWT secret); the connections the tasks read are imported from a
private file deleted at once. Each worker has a workspace of its own (``MODEL_REPO``),
the shared repo's and remote's URLs, and no secret in its environment.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchserving import DAGS_FOLDER
from batchserving.core.atomic import write_private
from scripts.airflow_api import ADMIN
from scripts.airflow_settings import AIRFLOW, project_settings
from scripts.cluster.git_server import GitServer
from scripts.cluster.postgres import Postgres
from scripts.cluster.redis import Redis
from scripts.cluster.seaweedfs import SeaweedFS
from scripts.cluster.state import ClusterState, private_dir, run

# Started in this order, each restartable on its own; the triggerer runs deferred tasks,
# DeadlineAlert callbacks and the HITL operators' waits.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
DEFAULT_WORKERS = 2
# What a component's command line adds: every log is on the shared disk, so no log server.
COMPONENT_OPTIONS = {"triggerer": ["--skip-serve-logs"]}


def worker_names(count: int) -> list[str]:
    """The names of ``count`` workers: ``worker-1`` .. ``worker-N``."""
    return [f"worker-{n}" for n in range(1, count + 1)]


@dataclass
class Airflow:
    """The Airflow components of one cluster, on ``state.ports['api']``."""

    state: ClusterState
    postgres: Postgres  # the metadata DB and the Celery result backend
    redis: Redis  # the Celery broker
    git_server: GitServer  # the workers' MODEL_REPO_URL
    seaweedfs: SeaweedFS  # the workers' DVC_REMOTE_URL
    settings: dict[tuple[str, str], str] = field(default_factory=dict)  # over the defaults
    worker_concurrency: int = 3
    _worker_log_offset: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    @property
    def home(self) -> Path:
        return self.state.home

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def workers(self) -> list[str]:
        """The workers' names, as recorded in ``cluster.json``."""
        return self.state.workers

    def workspace(self, worker: str) -> Path:
        return self.state.data / "workers" / worker / "model-repo"

    def config(self) -> dict[tuple[str, str], str]:
        """The configuration every Airflow component reads (``AIRFLOW_HOME/airflow.cfg``)."""
        api, db = self.state.ports["api"], self.postgres.sql_alchemy_conn
        return {
            # What every Airflow of the project shares (dags, plugins, time zone, API, login).
            **project_settings(api_port=api, passwords_file=self.home / "passwords.json"),
            ("core", "executor"): "CeleryExecutor",
            ("core", "parallelism"): "8",
            # Connections are stored encrypted, with one key every component shares.
            ("core", "fernet_key"): self.state.secrets.fernet_key,
            ("database", "sql_alchemy_conn"): db,
            ("celery", "broker_url"): self.redis.broker_url,
            ("celery", "result_backend"): "db+" + db,
            ("celery", "worker_concurrency"): str(self.worker_concurrency),
            # Shared by the components: the scheduler signs task tokens the API server checks.
            ("api_auth", "jwt_secret"): self.state.secrets.jwt_secret,
            # A task whose worker died frees its pool slot after a minute without a
            # heartbeat (Airflow's default: 5 minutes, the one model_repo slot held that
            # long); a live task heartbeats every few seconds.
            ("scheduler", "task_instance_heartbeat_timeout"): "60",
            # A scheduler only times out the tasks it queued itself; a restarted one takes
            # over its predecessor's when it next looks for orphans (default: every 300 s).
            ("scheduler", "orphaned_tasks_check_interval"): "30",
            # A task sent to Celery whose message was lost (Redis restarted: it keeps
            # nothing on disk) is sent again after 3 minutes (default 10).
            ("scheduler", "task_queued_timeout"): "180",
            ("logging", "trigger_log_server_port"): str(self.state.port("triggerer-logs")),
            # Task logs (folders and files) for their owner only; Airflow's defaults are
            # group-writable and world-readable.
            ("logging", "file_task_handler_new_folder_permissions"): "0o700",
            ("logging", "file_task_handler_new_file_permissions"): "0o600",
            **self.settings,
        }

    def _write_config(self) -> None:
        sections: dict[str, list[str]] = {}
        for (section, key), value in self.config().items():
            sections.setdefault(section, []).append(f"{key} = {value}")
        text = "".join(f"[{s}]\n" + "\n".join(lines) + "\n\n" for s, lines in sections.items())
        write_private(self.home / "airflow.cfg", text)
        passwords = json.dumps({ADMIN: self.state.secrets.admin_password})
        write_private(self.home / "passwords.json", passwords)

    def prepare(self) -> None:
        """Write the configuration, migrate the DB, make the pool (before a full start)."""
        self._write_config()
        env = self.state.env()
        run([AIRFLOW, "db", "migrate"], "airflow db migrate", env=env)
        setup = [sys.executable, "-m", "batchserving_dags"]
        run(setup, "creating the pool", env=env, cwd=DAGS_FOLDER)

    def start_component(self, name: str, health: Callable[[], Any]) -> None:
        """Start (or restart) one of ``COMPONENTS`` on the written configuration; the API
        server is waited for until ``health()`` (its answer) says something."""
        self.state.spawn(name, [AIRFLOW, name, *COMPONENT_OPTIONS.get(name, [])])
        if name == "api-server":
            self.state.wait_for("api-server", health, timeout=120)

    def set_connections(self, connections: dict[str, dict[str, Any]]) -> None:
        """Create or replace the connections from a private file, deleted at once: Airflow's
        audit log keeps a REST request's body (logins unmasked) and a CLI command's
        arguments, so the values go through neither."""
        with tempfile.TemporaryDirectory(prefix="cluster-connections-") as tmp:
            path = write_private(Path(tmp) / "connections.json", json.dumps(connections))
            cmd = [AIRFLOW, "connections", "import", "--overwrite", str(path)]
            run(cmd, "creating the connections", env=self.state.env())

    def worker_env(self, worker: str) -> dict[str, str]:
        """A worker's environment: its workspace, the shared repo and remote, no secret."""
        return {
            **self.state.env(),
            "MODEL_REPO": str(self.workspace(worker)),
            "MODEL_REPO_URL": self.git_server.model_repo_url,
            "DVC_REMOTE_URL": self.seaweedfs.dvc_remote_url,
            # Two workers on one machine: each its own log server port, and its own name
            # on the task instances it runs.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.state.port(f"{worker}-logs")),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.worker_identity.hostname",
            "CLUSTER_WORKER_NAME": worker,
        }

    def start_worker(self, worker: str) -> None:
        """Start (or restart after a crash) one Celery worker."""
        private_dir(self.workspace(worker).parent)
        cmd = [AIRFLOW, "celery", "worker", "--celery-hostname", f"{worker}@%h"]
        # Every component shares AIRFLOW_HOME/logs, so the API server reads task logs from
        # the disk; the log server would listen on every interface, not 127.0.0.1 alone.
        cmd += ["--concurrency", str(self.worker_concurrency), "--skip-serve-logs"]
        log = self.state.log(worker)
        self._worker_log_offset[worker] = log.stat().st_size if log.exists() else 0
        self.state.spawn(worker, cmd, env=self.worker_env(worker))

    def worker_ready(self, worker: str) -> bool:
        """Whether ``worker`` said it is ready since it was started (by this process)."""
        with open(self.state.log(worker), "rb") as out:
            out.seek(self._worker_log_offset.get(worker, 0))
            return b" ready." in out.read()

    def wait_for_worker(self, worker: str) -> None:
        self.state.wait_for(worker, lambda: self.worker_ready(worker), timeout=120)
