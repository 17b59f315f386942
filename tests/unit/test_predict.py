"""The predict command: where it writes, what a run conf may reach, and its exit codes for
bad input, nothing deployed and a model that fails its check; a killed run leaves no file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from batchserving import PROJECT_ROOT
from batchserving.serving.deployment import deploy_model, file_md5
from batchserving.serving.predict import prediction_path
from tests.unit.conftest import DATE, features


def cli(workdir: Path, *args: str, **kwargs) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    cmd = [sys.executable, "-m", "batchserving.serving.predict", *args]
    if kwargs.pop("background", False):
        return subprocess.Popen(cmd, cwd=workdir, env=env, stderr=subprocess.PIPE, **kwargs)
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, **kwargs)


def test_prediction_path_is_by_utc_date_and_time() -> None:
    seoul = DATE.astimezone(timezone(timedelta(hours=9)))
    expected = Path("output/predictions/2026-03-01/2026-03-01T09-25-00Z.csv")
    assert prediction_path(seoul) == expected


def test_an_asset_triggered_run_gets_a_file_of_its_own() -> None:
    """An asset-triggered run's date is its run_after, to the microsecond: a promotion in
    the same second as a scheduled run (or a second promotion) never overwrites its file."""
    scheduled = DATE
    promoted = DATE + timedelta(microseconds=412_000)
    assert prediction_path(promoted) != prediction_path(scheduled)
    assert prediction_path(promoted) == Path(
        "output/predictions/2026-03-01/2026-03-01T09-25-00.412000Z.csv"
    )
    assert prediction_path(promoted) == prediction_path(promoted)  # a re-run: the same file


def test_cli_reports_bad_input_and_exits_1(workdir: Path) -> None:
    (workdir / "in.csv").write_text("sepal_length,sepal_width,petal_length\n1,2,3\n")
    result = cli(workdir, "--input", "in.csv", "--output", "out.csv")
    assert result.returncode == 1
    assert "bad input" in result.stderr and "'petal_width'" in result.stderr
    assert not (workdir / "out.csv").exists()


def test_cli_confines_run_conf_paths_but_takes_any_path_by_hand(
    workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("other_team")
    features(3).to_csv(outside / "batch.csv", index=False)
    (outside / "creds.csv").write_text("password=hunter2,x\n1,2\n")
    for conf in (
        {"input_path": str(outside / "creds.csv")},
        {"input_path": "../" + outside.name + "/creds.csv"},
    ):
        result = cli(workdir, "--run-conf", json.dumps(conf))
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1 and "hunter2" not in result.stderr
        assert "predict: bad run conf: input_path" in result.stderr
        assert "relative path inside the model repo" in result.stderr
    clobber = outside / "new/dirs/clobber.csv"
    result = cli(workdir, "--run-conf", json.dumps({"output_path": str(clobber)}))
    assert result.returncode == 1 and "output/predictions/" in result.stderr
    assert not (outside / "new").exists()
    assert not (workdir / "output/predictions").exists()

    # By hand, a person's paths are taken as given.
    target = outside / "by-hand/scored.csv"
    result = cli(workdir, "--input", str(outside / "batch.csv"), "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(target)) == 3


def test_a_scheduled_run_with_a_bad_output_suffix_creates_no_folder(workdir: Path) -> None:
    result = cli(workdir, "--output", "new/dir/scored.txt")
    assert result.returncode == 1 and "unknown output format" in result.stderr
    assert not (workdir / "new").exists()


def test_cli_skips_with_99_when_nothing_is_deployed(workdir: Path) -> None:
    shutil.rmtree(workdir / "output/serving")
    result = cli(workdir, "--logical-date", DATE.isoformat())
    assert result.returncode == 99
    assert "run the model_selection DAG first" in result.stderr
    assert not (workdir / "output/predictions").exists()


def test_cli_refuses_a_model_that_does_not_match_its_record(workdir: Path) -> None:
    with open(workdir / "output/serving/model.joblib", "ab") as fh:
        fh.write(b"tampered")
    result = cli(workdir, "--logical-date", DATE.isoformat())
    assert result.returncode == 1
    assert "does not match the md5" in result.stderr
    assert not (workdir / "output/predictions").exists()


def test_cli_reports_a_pinned_file_that_is_not_a_model(workdir: Path, tmp_path: Path) -> None:
    # Consistent with its record (the md5 it pins), but not a model: only loading can tell.
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"this is not a pickle")
    record = json.loads((workdir / "output/serving/model.json").read_text())
    deploy_model(workdir / "output/serving", garbage, {**record, "model_md5": file_md5(garbage)})
    result = cli(workdir, "--logical-date", DATE.isoformat())
    assert result.returncode == 1
    assert "cannot load the deployed model" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / "output/predictions").exists()


def test_killed_mid_write_leaves_no_file_at_the_target(workdir: Path) -> None:
    rows = 1_500_000  # several seconds of scoring: long enough to be killed mid-write
    big = features(rows)
    big.to_parquet(workdir / "big.parquet")
    target = workdir / "scored.csv"
    proc = cli(workdir, "--input", "big.parquet", "--output", "scored.csv", background=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            temps = list(workdir.glob(".scored.csv.*.tmp"))
            if temps and temps[0].stat().st_size > 0:  # the output is being written
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
