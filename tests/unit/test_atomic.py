"""Atomic writes: a failed or killed writer leaves the old file, a private file is 0600."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from batchserving import PROJECT_ROOT
from batchserving.core.atomic import write_json, write_private, write_text


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        write_json(target, {"a": object()})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_write_survives_sigkill_mid_write(tmp_path: Path) -> None:
    """A writer killed mid-write leaves the old content, never a half-written file."""
    target = tmp_path / "out.txt"
    write_text(target, "old\n")
    script = (
        "import sys, time; from batchserving.core.atomic import atomic_open\n"
        f"with atomic_open({str(target)!r}) as fh:\n"
        "    fh.write('partial'); fh.flush(); print('writing', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert target.read_text() == "old\n"


def test_a_private_file_is_never_readable_by_others(tmp_path: Path, monkeypatch) -> None:
    """0600 from its creation, also when it replaces a file others could read."""
    target = tmp_path / "secret"
    target.write_text("old")
    target.chmod(0o644)
    seen_modes = []
    real_replace = os.replace

    def replace(src, dst):  # the temp file's mode, the moment before it becomes the target
        seen_modes.append(os.stat(src).st_mode & 0o777)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_private(target, "s3cr3t")
    assert seen_modes == [0o600]
    assert target.stat().st_mode & 0o777 == 0o600 and target.read_text() == "s3cr3t"
