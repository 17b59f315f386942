"""The model repo's write lock, which every command that writes the repo takes itself.

    with locked_workspace() as repo:
        ...  # sync, dvc repro, git commit, gto, publish

A DAG task and a person at the terminal never write the repo at the same time: the
second one waits for the lock (bounded), instead of failing on DVC's own "Unable to
acquire lock". The lock is an OS file lock (flock) inside ``.dvc/tmp`` (which git and
DVC ignore), released by the kernel when the holder dies, so a killed task never leaves
a stale lock behind. The repo is the workspace ``batchserving.registry.workspace``
resolves (``$MODEL_REPO``, made on first use), checked to be a git and DVC workspace
before the lock is taken.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Generator, Mapping
from pathlib import Path

from filelock import FileLock, Timeout

from batchserving.core.names import LOCK_FILE
from batchserving.registry.workspace import ensure_workspace

LOCK_TIMEOUT_SECONDS = float(os.environ.get("MODEL_REPO_LOCK_TIMEOUT", "900"))
EX_TEMPFAIL = 75  # a busy lock is worth a retry: Airflow retries the task


def repo_lock(repo: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> FileLock:
    """The repo's write lock (not yet taken)."""
    lock_path = repo / LOCK_FILE
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(lock_path, timeout=timeout)


@contextlib.contextmanager
def children_reaped_on_sigterm() -> Generator[None, None, None]:
    """Turn SIGTERM into KeyboardInterrupt, so a running ``subprocess.run`` kills and waits.

    A task that times out or is killed gets SIGTERM for its whole process group. Without
    this, a parent dies before its child and the child becomes an orphan nobody reaps at
    once; DVC would then find the dead ``dvc`` pid still in its lock table and refuse the
    next run ("is busy"). With it, every parent reaps its child before it exits.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def locked_workspace(environ: Mapping[str, str] = os.environ) -> Generator[Path, None, None]:
    """The workspace (made if needed, validated), held under its write lock.

    Raise NotAModelRepo (a RegistryError) when MODEL_REPO is no usable workspace. When
    another writer holds the lock for more than LOCK_TIMEOUT_SECONDS, say so in one line
    and exit with EX_TEMPFAIL: nothing was written.
    """
    with children_reaped_on_sigterm():
        repo = ensure_workspace(environ)
        started = time.monotonic()
        try:
            lock = repo_lock(repo)
            lock.acquire()
        except Timeout:
            print(
                f"locked: {repo / LOCK_FILE} is held by another writer for more than "
                f"{LOCK_TIMEOUT_SECONDS:.0f}s; retry later or find the process holding it",
                file=sys.stderr,
            )
            raise SystemExit(EX_TEMPFAIL) from None
        try:
            waited = time.monotonic() - started
            if waited > 1:
                print(f"locked: waited {waited:.0f}s for the model repo lock", file=sys.stderr)
            yield repo
        finally:
            lock.release()
