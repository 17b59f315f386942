"""A hostile params.yaml stops a writing task before DVC reads it, in one short line.

DVC parses params.yaml itself before any stage runs; given a YAML alias bomb it spends
minutes expanding it. The publish task checks the file's size and structure first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, git
from tests.unit.test_params import ALIAS_BOMB

DEADLINE_SECONDS = 60


def test_an_alias_bomb_in_params_fails_publish_quickly(model_repo: Path) -> None:
    head = git(model_repo, "rev-parse", "HEAD")
    params = (model_repo / "params.yaml").read_text(encoding="utf-8")
    anchors = "\n".join(line for line in ALIAS_BOMB.splitlines() if line[1:3] == ": ")
    bomb = params.replace("random_state: 42", "random_state: [*g,*g,*g,*g,*g,*g,*g,*g,*g]")
    (model_repo / "params.yaml").write_text(f"{anchors}\n{bomb}", encoding="utf-8")
    started = time.monotonic()
    task = subprocess.Popen(
        [sys.executable, "-m", "batchserving.registry.publish", "evaluate"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "MODEL_REPO": str(model_repo)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: dvc is stopped with it
    )
    try:
        out, err = task.communicate(timeout=DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(task.pid, signal.SIGKILL)
        task.communicate()
        pytest.fail(f"publish was still running after {DEADLINE_SECONDS} s")
    seconds = time.monotonic() - started
    assert task.returncode != 0
    [line] = [ln for ln in err.splitlines() if ln.startswith("publish:")]
    assert "too deep or too large" in line and "nothing was published" in line
    assert len(line) < 400 and "Traceback" not in err
    assert git(model_repo, "rev-parse", "HEAD") == head
    assert seconds < 30, seconds
