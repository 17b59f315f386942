"""The train stage run as DVC runs it: a params error is one clear line and no model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from batchserving import PROJECT_ROOT
from tests.unit.conftest import PROJECT_PARAMS, write_params


def test_a_seed_numpy_cannot_take_fails_the_stage_in_one_line(tmp_path: Path) -> None:
    """The train stage, run as DVC runs it: a clear line naming the key, no traceback."""
    params = yaml.safe_load(PROJECT_PARAMS.read_text(encoding="utf-8"))
    params["train"]["random_state"] = 2**40
    write_params(tmp_path, yaml.safe_dump(params))
    env = {"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"}
    prepare = subprocess.run(
        [sys.executable, "-m", "stages.prepare"], cwd=tmp_path, env=env, capture_output=True
    )
    assert prepare.returncode == 0, prepare.stderr
    train = subprocess.run(
        [sys.executable, "-m", "stages.train"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert train.returncode != 0
    assert "Traceback" not in train.stderr, train.stderr[-2000:]
    [line] = train.stderr.strip().splitlines()
    assert "'train.random_state' = 1099511627776 is out of range" in line
    assert not (tmp_path / "output" / "model").exists()
