"""What every local Airflow the project starts shares: ports, processes, REST API v2.

Used by ``make cluster`` (``scripts.cluster``), by ``make demo`` and the end-to-end tests
(``scripts.airflow_server``) and by ``tests/cluster``, so each piece exists once:

- ``free_port()``, ``fernet_key()``, ``FAST_SCHEDULING`` (the settings that make a
  scheduler and a DAG processor react within seconds on 2 cores);
- processes: ``start_process()`` puts each in its own session (process group), and
  ``stop_processes()`` ends them by pid, SIGTERM then SIGKILL, then any stray descendant
  that carries a marker variable in its environment, and waits until none is left;
- ``AirflowRestClient``: token auth (``POST /auth/token``, SimpleAuthManager) and the REST
  calls the harnesses make (pools, connections, DAGs, runs, task instances).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ADMIN = "admin"
FINISHED = {"success", "failed"}

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


def tail_file(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a process's log file ("" if it has none yet)."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def wait_until(
    ready: Callable[[], Any],
    timeout: float,
    what: str,
    poll: float = 0.5,
    details: Callable[[], str] = str,
) -> Any:
    """Poll ``ready()`` until it returns something true; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = ready()
        if result:
            return result
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{details()}")


# --- processes -------------------------------------------------------------------------------


def start_process(
    cmd: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None, **kwargs: Any
) -> subprocess.Popen:
    """Start ``cmd`` in a session (process group) of its own, output appended to ``log``
    (created readable by its owner only: a process's output may name paths and settings)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab", opener=lambda path, flags: os.open(path, flags, 0o600)) as out:
        return subprocess.Popen(
            cmd,
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # killpg(pid) reaches it and every child it keeps
            **kwargs,
        )


def proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgid, start time in clock ticks) of ``pid``, or None if it is gone."""
    try:
        # "pid (comm) state ppid pgrp session tty tpgid flags minflt ... starttime(22nd)"
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def start_time(pid: int) -> int | None:
    stat = proc_stat(pid)
    return stat[3] if stat else None


def is_running(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` is a live process (not a zombie) started at ``started`` if given."""
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z" and (started is None or stat[3] == started)


def all_pids() -> Iterable[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (found through the parent pids in /proc)."""
    children: dict[int, list[int]] = {}
    for other in all_pids():
        stat = proc_stat(other)
        if stat and stat[0] != "Z":
            children.setdefault(stat[1], []).append(other)
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def pids_with_env(name: str, value: str) -> list[int]:
    """Pids of live processes whose environment has ``name=value`` (ours to stop)."""
    needle = f"{name}={value}".encode()
    pids = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and is_running(pid):
            pids.append(pid)
    return pids


def _same_process(pid: int, started: int | None) -> bool:
    stat = proc_stat(pid)
    return stat is None or started is None or stat[3] == started


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_members(pgids: set[int]) -> list[int]:
    """Live processes whose process group is one of ``pgids``."""
    found = []
    for pid in all_pids():
        stat = proc_stat(pid)
        if stat and stat[0] != "Z" and stat[2] in pgids:
            found.append(pid)
    return found


def stop_processes(
    leaders: Mapping[int, int | None],
    marker: tuple[str, str] | None = None,
    grace: float = 15,
    reap: Callable[[int], None] = lambda pid: None,
) -> list[int]:
    """Stop the process groups led by ``leaders`` ({pid: start time or None}); return the
    pids that needed SIGKILL. A group outlives its leader while a member lives, and the
    kernel reuses no pid that still names a group, so a leader that is gone still names
    our group; a live leader whose start time differs is another process (the pid was
    reused once our group was empty): it is left alone. Then every live process with
    ``marker`` (name, value) in its environment is SIGKILLed. Raises if any survives."""
    ours = {pid for pid, started in leaders.items() if _same_process(pid, started)}
    for pid in ours:
        signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and group_members(ours):
        for pid in ours:
            reap(pid)
        time.sleep(0.2)
    killed = group_members(ours)
    for pid in ours:
        signal_group(pid, signal.SIGKILL)
    if marker:
        for pid in pids_with_env(*marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    def gone() -> bool:
        for pid in ours:
            reap(pid)
        return not group_members(ours) and not (marker and pids_with_env(*marker))

    wait_until(gone, 30, f"processes {sorted(set(killed) | ours)} to end after SIGKILL", 0.1)
    return sorted(set(killed))


# --- REST API v2 -----------------------------------------------------------------------------


class AirflowRestClient:
    """REST API v2 calls with a SimpleAuthManager token. Needs ``url`` and ``password``."""

    url: str
    password: str
    _token: str | None = None

    def diagnostics(self) -> str:
        """What to show when a wait times out (the components' output)."""
        return ""

    def check_running(self) -> None:
        """Raise if a component this client started has exited (none started here)."""

    def _wait(self, ready: Callable[[], Any], timeout: float, what: str, poll=0.5) -> Any:
        """Poll ``ready()``; fail at once, with its output, if a component has exited."""

        def ready_while_running() -> Any:
            self.check_running()
            return ready()

        return wait_until(ready_while_running, timeout, what, poll, self.diagnostics)

    def token(self) -> str:
        if self._token is None:
            resp = requests.post(
                f"{self.url}/auth/token",
                json={"username": ADMIN, "password": self.password},
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

    def health(self) -> dict:
        """``/api/v2/monitor/health`` ({} while the API server does not answer)."""
        try:
            return requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).json()
        except (requests.ConnectionError, requests.Timeout, ValueError):
            return {}

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

    def pause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    def trigger(self, dag_id: str, run_id: str, attempts: int = 5) -> str:
        """Create a run. SQLite has one writer: a trigger beside a busy scheduler can meet
        "database is locked" (HTTP 500), so a 500 is retried a few times; a retry that finds
        the run already created (409) counts as created."""
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
