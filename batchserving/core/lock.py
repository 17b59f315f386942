"""Run one command in the model repo while holding the repo's file lock.

    python -m batchserving.core.lock dvc repro evaluate
    python -m batchserving.core.lock python -m batchserving.registry.register register

Every task that writes the model repo (dvc, git, gto) goes through here, so a DAG
and a person at the terminal never write it at the same time: the second one waits
for the lock (bounded), instead of failing on DVC's own "Unable to acquire lock".
The lock is an OS file lock (flock), released by the kernel when the holder dies,
so a killed task never leaves a stale lock behind.

The repo is the workspace ``batchserving.registry.workspace`` resolves (``$MODEL_REPO``,
made on first use). It is checked to be a git and DVC workspace before any work starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from filelock import FileLock, Timeout

from batchserving.core.names import LOCK_FILE

LOCK_TIMEOUT_SECONDS = float(os.environ.get("MODEL_REPO_LOCK_TIMEOUT", "900"))


def repo_lock(repo: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> FileLock:
    """The repo's write lock (inside .dvc/tmp, which git and DVC ignore)."""
    lock_path = repo / LOCK_FILE
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(lock_path, timeout=timeout)


def command_env() -> dict[str, str]:
    """The environment for the command: this interpreter's bin dir first on PATH.

    So that ``dvc``, ``gto`` and the ``python`` that DVC stages call are the ones
    installed beside the interpreter running this module.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def reap_children_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so a running ``subprocess.run`` kills and waits.

    A task that times out or is killed gets SIGTERM for its whole process group. Without
    this, a parent dies before its child and the child becomes an orphan nobody reaps at
    once; DVC would then find the dead ``dvc`` pid still in its lock table and refuse the
    next run ("is busy"). With it, every parent reaps its child before it exits.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def run_locked(command: list[str]) -> int:
    """Run ``command`` in the model repo under its lock; return its exit code."""
    from batchserving.registry.workspace import ensure_workspace

    repo = ensure_workspace()
    started = time.monotonic()
    try:
        with repo_lock(repo):
            waited = time.monotonic() - started
            if waited > 1:
                print(f"locked: waited {waited:.0f}s for the model repo lock", file=sys.stderr)
            env = {**command_env(), "MODEL_REPO": str(repo)}
            return subprocess.run(command, cwd=repo, env=env, check=False).returncode
    except Timeout:
        print(
            f"locked: {repo / LOCK_FILE} is held by another writer for more than "
            f"{LOCK_TIMEOUT_SECONDS:.0f}s; retry later or find the process holding it",
            file=sys.stderr,
        )
        return 75  # EX_TEMPFAIL: Airflow retries the task


def main() -> None:
    command = sys.argv[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        sys.exit("usage: python -m batchserving.core.lock COMMAND [ARGS...]")
    from batchserving.registry.workspace import NotAModelRepo

    reap_children_on_sigterm()
    try:
        sys.exit(run_locked(command))
    except NotAModelRepo as exc:
        sys.exit(f"locked: {exc}")


if __name__ == "__main__":
    main()
