"""Crash safety: ``kill -9`` a writer of the model repo in the middle of its work.

Afterwards: no stale lock blocks anyone (the repo lock is an flock, released by the
kernel when its holder dies; DVC's own locks likewise), the versions, tags and deployment
that existed are untouched, and the next run succeeds with no manual cleanup.

The pieces are reusable for the other kill points (mid-promotion: between ``gto assign``
and the deployment; mid-weather-fetch): start the task's command with
``start_writer()``, ``kill_when()`` its output or process tree shows the point, then
``assert_recovered()`` with a ``RepoState`` captured before.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from stages.locked import LOCK_FILE
from tests.conftest import PROJECT_ROOT
from tests.e2e.checks import LOCK_CONTENTION, git, registry_problems

PYTHON = sys.executable


def locked(*command: str) -> list[str]:
    """The command line a DAG task runs: ``python -m stages.locked COMMAND``."""
    return [PYTHON, "-m", "stages.locked", *command]


def writer_env(repo: Path) -> dict[str, str]:
    return {**os.environ, "MODEL_REPO": str(repo), "PYTHONUNBUFFERED": "1"}


def run_writer(repo: Path, *command: str) -> str:
    """Run a locked command to completion (as a task would); fail with its output."""
    result = subprocess.run(
        locked(*command),
        cwd=PROJECT_ROOT,
        env=writer_env(repo),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command} failed:\n{output}"
    return output


def start_writer(repo: Path, *command: str) -> subprocess.Popen:
    """Start a locked command in its own process group (so kill -9 reaches dvc and its stage)."""
    return subprocess.Popen(
        locked(*command),
        cwd=PROJECT_ROOT,
        env=writer_env(repo),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def group_cmdlines(pgid: int) -> list[str]:
    """Command lines of the live processes in process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # Zombies (state Z, waiting for init to reap them) are dead already.
            if os.getpgid(int(entry.name)) != pgid or ") Z " in (entry / "stat").read_text():
                continue
            found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ProcessLookupError):
            continue
    return found


def kill_when(
    proc: subprocess.Popen, ready: Callable[[str, list[str]], bool], timeout: float = 120
) -> str:
    """SIGKILL ``proc``'s whole group as soon as ``ready(output, cmdlines)``; return output."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            output = "".join(lines)
            if ready(output, group_cmdlines(proc.pid)):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            assert proc.poll() is None, f"finished before the kill point:\n{output}"
            time.sleep(0.05)
        else:
            raise AssertionError(f"kill point not reached in {timeout:.0f}s:\n{output}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    output = "".join(lines)
    assert proc.returncode == -signal.SIGKILL
    assert not group_cmdlines(proc.pid), "processes of the killed task survived"
    return output


def tree_digest(root: Path) -> dict[str, str]:
    if not root.is_dir():
        return {}
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@dataclass(frozen=True)
class RepoState:
    """What a killed writer must leave as it was: commits, tags, deployment, weather data."""

    head: str
    tags: dict[str, str]
    serving: dict[str, str]
    weather: dict[str, str]

    @classmethod
    def capture(cls, repo: Path) -> RepoState:
        tags = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/tags")
        return cls(
            head=git(repo, "rev-parse", "HEAD").strip(),
            tags=dict(line.split() for line in tags.splitlines()),
            serving=tree_digest(repo / "output" / "serving"),
            weather=tree_digest(repo / "output" / "weather"),
        )


def assert_lock_free(repo: Path) -> None:
    """The repo lock can be taken at once: nobody holds it, and a dead holder left none."""
    with FileLock(repo / LOCK_FILE, timeout=0):
        pass


def assert_recovered(repo: Path, before: RepoState) -> None:
    """After the kill: lock free, everything that existed untouched, registry consistent."""
    assert_lock_free(repo)
    assert RepoState.capture(repo) == before
    assert registry_problems(repo) == []


def test_kill_during_training_leaves_no_stale_lock_and_no_damage(model_repo: Path) -> None:
    # A registered version exists before the crash.
    run_writer(model_repo, "dvc", "repro", "evaluate")
    run_writer(model_repo, "python", "-m", "stages.registry", "register")
    before = RepoState.capture(model_repo)
    assert [t for t in before.tags if t.startswith("iris-model@")] == ["iris-model@v0.0.1"]

    # A person changes a parameter; the next training run is killed while it trains.
    params = model_repo / "params.yaml"
    params.write_text(re.sub(r"(?m)^(\s*n_estimators:\s*)\d+", r"\g<1>400", params.read_text()))
    training = start_writer(model_repo, "dvc", "repro", "evaluate")
    output = kill_when(
        training,
        lambda out, cmds: "Running stage 'train'" in out and any("stages.train" in c for c in cmds),
    )
    assert "Running stage 'evaluate'" not in output

    assert_recovered(model_repo, before)
    # The next run needs no cleanup: it trains, registers a new version, meets no busy lock.
    started = time.monotonic()
    output = run_writer(model_repo, "dvc", "repro", "evaluate")
    output += run_writer(model_repo, "python", "-m", "stages.registry", "register")
    assert time.monotonic() - started < 120
    assert not [m for m in LOCK_CONTENTION if m in output], output
    assert "registered iris-model@v0.0.2" in output
    assert registry_problems(model_repo) == []
    after = RepoState.capture(model_repo)
    assert {t: before.tags[t] for t in before.tags} == {t: after.tags[t] for t in before.tags}
