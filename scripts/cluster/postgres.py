"""PostgreSQL for the cluster: Airflow's metadata DB and the Celery result backend.

Debian's newest server, initialised once in the data folder (SCRAM passwords, user
``airflow``), run as ``postgres`` when we are root (it refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchserving.core.atomic import write_private
from scripts.cluster.state import ClusterError, ClusterState, private_dir, run
from scripts.processes import group_members, is_running, stop_processes, wait_until


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


def postgres_user() -> dict[str, Any]:
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


def check_reachable(path: Path, uid: int, gid: int) -> None:
    """Raise if ``uid`` (in group ``gid``) cannot enter ``path`` and each of its parents."""
    for parent in [path, *path.parents]:
        info = parent.stat()
        by_group = info.st_gid == gid and info.st_mode & 0o010
        if info.st_uid != uid and not by_group and not info.st_mode & 0o001:
            raise ClusterError(
                f"PostgreSQL runs as uid {uid}, which cannot enter {parent} (mode "
                f"{oct(info.st_mode & 0o777)}): put the cluster's data folder elsewhere "
                f"or `chmod o+x {parent}`"
            )


@dataclass
class Postgres:
    """The cluster's PostgreSQL server on ``state.ports['postgres']``."""

    state: ClusterState

    @property
    def sql_alchemy_conn(self) -> str:
        pw, port = self.state.secrets.postgres_password, self.state.ports["postgres"]
        return f"postgresql+psycopg2://airflow:{pw}@127.0.0.1:{port}/airflow"

    def start(self) -> None:
        bindir, as_user = pg_bindir(), postgres_user()
        pgdata, sockets = self.pgdata, self.state.data / "postgres" / "run"
        for path in (pgdata.parent, sockets):
            private_dir(path)
            if as_user:
                os.chown(path, as_user["user"], as_user["group"])
        if as_user:
            check_reachable(sockets, as_user["user"], as_user["group"])
        if not (pgdata / "PG_VERSION").exists():
            self._initdb(bindir, pgdata, as_user)
        settings = ["listen_addresses=127.0.0.1", f"port={self.state.ports['postgres']}"]
        settings += [f"unix_socket_directories={sockets}", "max_connections=200"]
        # fsync stays on (a crash must not corrupt the DB); a commit that returns before
        # its WAL reaches the disk may be lost in a crash, never half-applied.
        settings += ["synchronous_commit=off"]
        cmd = [str(bindir / "postgres"), "-D", str(pgdata)]
        cmd += [arg for setting in settings for arg in ("-c", setting)]
        self.state.spawn("postgres", cmd, **as_user)
        self.state.wait_for("postgres", lambda: self.connects("postgres"))
        if not self.connects("airflow"):
            self._execute("postgres", "CREATE DATABASE airflow")

    @property
    def pgdata(self) -> Path:
        return self.state.data / "postgres" / "data"

    def stop(self, timeout: float = 60) -> list[int]:
        """Stop the server with a fast shutdown and wait until it is gone, its pid file too;
        return the pids that needed SIGKILL.

        SIGINT rolls back the open transactions and disconnects the clients (SIGTERM's
        smart shutdown would wait for them: a Celery worker finishing its tasks stays
        connected); a start right after would otherwise meet the old ``postmaster.pid``."""
        if "postgres" not in self.state.pids:
            return []
        pid, started = self.state.pids["postgres"]
        lock_file = self.pgdata / "postmaster.pid"
        if is_running(pid, started):
            os.kill(pid, signal.SIGINT)

        def gone() -> bool:
            self.state.reap(pid)
            return not group_members({pid})  # the postmaster and every backend

        killed: list[int] = []
        try:
            wait_until(gone, timeout, "PostgreSQL's fast shutdown", 0.2)
        except TimeoutError:
            killed = stop_processes({pid: started}, grace=0, reap=self.state.reap)
        if lock_file.exists():
            # Left by a killed server: the next start would check the pid in it, which the
            # kernel may have given to another process by now.
            lock_file.unlink()
        return killed

    def _initdb(self, bindir: Path, pgdata: Path, as_user: dict[str, Any]) -> None:
        pw = self.state.secrets.postgres_password
        pwfile = write_private(self.state.data / "postgres" / ".pw", pw)
        if as_user:
            os.chown(pwfile, as_user["user"], as_user["group"])
        cmd = [str(bindir / "initdb"), "-D", str(pgdata), "-U", "airflow", "-E", "UTF8"]
        cmd += ["--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-instructions"]
        run(cmd, "initdb", env=self.state.env(), **as_user)
        pwfile.unlink()

    def connects(self, dbname: str) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self.dsn(dbname), connect_timeout=2).close()
        except psycopg2.OperationalError:
            return False
        return True

    def dsn(self, dbname: str) -> str:
        pw, port = self.state.secrets.postgres_password, self.state.ports["postgres"]
        return f"host=127.0.0.1 port={port} user=airflow password={pw} dbname={dbname}"

    def _execute(self, dbname: str, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.dsn(dbname))
        conn.autocommit = True  # CREATE DATABASE runs outside a transaction
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def dump(self, *options: str) -> bytes:
        """The metadata DB as SQL text (what an operator's backup would hold)."""
        port = str(self.state.ports["postgres"])
        cmd = [str(pg_bindir() / "pg_dump"), "-h", "127.0.0.1", "-p", port]
        cmd += ["-U", "airflow", *options, "airflow"]
        env = {**self.state.env(), "PGPASSWORD": self.state.secrets.postgres_password}
        result = subprocess.run(cmd, capture_output=True, env=env, check=False)
        if result.returncode != 0:
            raise ClusterError(f"pg_dump failed: {result.stderr.decode(errors='replace')}")
        return result.stdout
