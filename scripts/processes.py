"""Process control for the servers the project starts on this machine: ports, pids, waiting.

Shared by ``make demo`` and the end-to-end tests (``scripts.airflow_server``), by
``make cluster`` (``scripts.cluster``) and by the tests that start a server of their own:

- ports: ``free_port()``, ``port_is_free()``, ``answers()``, ``port_holder()``;
- ``start_process()`` puts each process in its own session (process group), and
  ``stop_processes()`` ends them by pid, SIGTERM then SIGKILL, then any stray descendant
  that carries a marker variable in its environment, and waits until none is left;
- ``/proc`` reading (``proc_stat()``, ``is_running()``, ``descendants()``, ``cmdline()``,
  ``pids_with_env()``), ``wait_until()`` and ``tail_file()`` for a process's log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any


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
    """Whether a server could listen on 127.0.0.1:``port`` now. Servers set SO_REUSEADDR,
    so a connection of an earlier server still in TIME_WAIT does not count as taken."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str | None:
    """Who listens on TCP ``port`` (any local address): "pid N (program)", or "another
    user's process" when /proc does not say; None when nobody listens. The program's name
    only: another process's arguments may hold a secret."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                # local address "0100007F:1F90", state 0A = LISTEN, inode the 10th field
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for pid in all_pids():
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        program = (cmdline(pid).split() or ["?"])[0]
                        return f"pid {pid} ({Path(program).name[:60]})"
    return "another user's process"


def answers(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


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
