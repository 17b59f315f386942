"""A writer's command takes the repo lock itself: it waits for another holder, bounded.

The other holder is this test process, holding the same file lock a person's command or
another task would hold (``batchserving.registry.lock.repo_lock``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from batchserving import PROJECT_ROOT
from batchserving.registry.lock import EX_TEMPFAIL, repo_lock
from tests.conftest import git, task_result, tree_digest

PUBLISH = (sys.executable, "-m", "batchserving.registry.publish", "evaluate")
HOLD_SECONDS = 3.0


def publish(repo: Path, **env: str) -> subprocess.Popen:
    """Start the publish task's command in ``repo``, as a DAG task runs it."""
    return subprocess.Popen(
        PUBLISH,
        cwd=PROJECT_ROOT,
        env={**os.environ, "MODEL_REPO": str(repo), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(task: subprocess.Popen) -> tuple[str, str]:
    """The command's (stdout, stderr) once it ends; killed if it outlives the test's patience."""
    try:
        return task.communicate(timeout=300)
    finally:
        if task.poll() is None:
            task.kill()
            task.wait()


def test_a_writer_waits_for_the_lock_and_then_runs(model_repo: Path) -> None:
    lock = repo_lock(model_repo, timeout=0)
    lock.acquire()
    started = time.monotonic()
    try:
        task = publish(model_repo)
        time.sleep(HOLD_SECONDS)
    finally:
        lock.release()
    out, err = finished(task)
    assert task.returncode == 0, out + err
    assert time.monotonic() - started >= HOLD_SECONDS
    assert "waited" in err and "for the model repo lock" in err
    assert task_result(out)["commit"] == git(model_repo, "rev-parse", "HEAD").strip()


def test_a_lock_held_too_long_fails_the_writer_in_one_line_and_writes_nothing(
    model_repo: Path,
) -> None:
    head = git(model_repo, "rev-parse", "HEAD")
    status = git(model_repo, "status", "--porcelain", "--ignored", "--", ".", ":!.dvc/tmp")
    with repo_lock(model_repo, timeout=0):
        task = publish(model_repo, MODEL_REPO_LOCK_TIMEOUT="2")
        out, err = finished(task)
    assert task.returncode == EX_TEMPFAIL, out + err
    [line] = err.strip().splitlines()
    assert "model-repo.lock is held by another writer for more than 2s" in line
    assert "retry later" in line and len(line) < 300
    assert out == ""
    assert git(model_repo, "rev-parse", "HEAD") == head
    assert git(model_repo, "status", "--porcelain", "--ignored", "--", ".", ":!.dvc/tmp") == status
    assert tree_digest(model_repo / "output") == {}
