"""Batch scoring: seeded sampling, streaming scoring = in-memory predict, bad input, atomicity."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batchserving import PROJECT_ROOT
from batchserving.serving.deployment import deploy_model, file_md5
from batchserving.serving.predict import prediction_path
from batchserving.serving.scoring import (
    Lineage,
    sample_features,
    score_file,
    write_sample_predictions,
)
from batchserving.serving.tables import InputError
from batchserving.training.iris import FEATURES

LINEAGE = Lineage("v1.2.3", "c" * 40, "scheduled__2026-03-01T09:25:00+00:00")
DATE = datetime(2026, 3, 1, 9, 25, tzinfo=UTC)


def cli(workdir: Path, *args: str, **kwargs) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    cmd = [sys.executable, "-m", "batchserving.serving.predict", *args]
    if kwargs.pop("background", False):
        return subprocess.Popen(cmd, cwd=workdir, env=env, stderr=subprocess.PIPE, **kwargs)
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, **kwargs)


def features(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.uniform(0.1, 8.0, (n, 4)).round(3), columns=FEATURES)


def no_leftovers(directory: Path) -> bool:
    """Nothing but the input files: no output and no temp file."""
    return sorted(p.name for p in directory.iterdir()) == ["input.csv"] or sorted(
        p.name for p in directory.iterdir()
    ) == ["input.parquet"]


def test_sampling_is_seeded_by_the_logical_date(model, tmp_path: Path) -> None:
    first, again = sample_features(5, DATE), sample_features(5, DATE)
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == FEATURES and len(first) == 5
    # Another run gets other rows; the same instant in another timezone is the same run.
    assert not first.equals(sample_features(5, DATE + timedelta(minutes=5)))
    seoul = DATE.astimezone(timezone(timedelta(hours=9)))
    pd.testing.assert_frame_equal(first, sample_features(5, seoul))

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_sample_predictions(model, 5, DATE, LINEAGE, a)
    write_sample_predictions(model, 5, DATE, LINEAGE, b)
    assert a.read_bytes() == b.read_bytes()
    written = pd.read_csv(a)
    assert list(written.columns) == [
        *FEATURES,
        "predicted_class",
        "probability",
        "model_version",
        "model_commit",
        "run_id",
    ]
    np.testing.assert_allclose(written[FEATURES].to_numpy(), first.to_numpy())


def test_prediction_path_is_by_utc_date_and_time() -> None:
    seoul = DATE.astimezone(timezone(timedelta(hours=9)))
    expected = Path("output/predictions/2026-03-01/2026-03-01T09-25-00Z.csv")
    assert prediction_path(seoul) == expected


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_streamed_scoring_equals_in_memory_predict(model, tmp_path: Path, fmt: str) -> None:
    data = features(2_500)
    data.insert(2, "sample_id", [f"s-{i:05d}" for i in range(len(data))])  # an extra column
    source = tmp_path / f"input.{fmt}"
    data.to_csv(source, index=False) if fmt == "csv" else data.to_parquet(source)
    target = tmp_path / f"scored.{fmt}"

    rows = score_file(model, source, target, LINEAGE, chunk_rows=1_000)  # 3 chunks

    assert rows == len(data)
    scored = pd.read_csv(target) if fmt == "csv" else pd.read_parquet(target)
    assert list(scored.columns) == [
        *FEATURES[:2],
        "sample_id",
        *FEATURES[2:],
        "predicted_class",
        "probability",
        "model_version",
        "model_commit",
        "run_id",
    ]
    assert scored["sample_id"].tolist() == data["sample_id"].tolist()  # passed through
    np.testing.assert_array_equal(scored[FEATURES].to_numpy(), data[FEATURES].to_numpy())
    assert scored["predicted_class"].tolist() == model.predict(data[FEATURES]).tolist()
    expected_probability = model.predict_proba(data[FEATURES]).max(axis=1)
    np.testing.assert_allclose(scored["probability"].to_numpy(), expected_probability)
    assert set(scored["model_version"]) == {LINEAGE.model_version}
    assert set(scored["model_commit"]) == {LINEAGE.model_commit}
    assert set(scored["run_id"]) == {LINEAGE.run_id}


def test_csv_output_from_parquet_and_empty_input(model, tmp_path: Path) -> None:
    source = tmp_path / "input.parquet"
    features(10).to_parquet(source)
    score_file(model, source, tmp_path / "out.csv", LINEAGE, chunk_rows=1_000)
    assert len(pd.read_csv(tmp_path / "out.csv")) == 10

    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(FEATURES) + "\n")
    assert score_file(model, empty, tmp_path / "empty-out.csv", LINEAGE, 1_000) == 0
    assert pd.read_csv(tmp_path / "empty-out.csv").columns[-1] == "run_id"


def bad_missing_column(data: pd.DataFrame) -> pd.DataFrame:
    return data.drop(columns=["petal_width"])


def bad_text(data: pd.DataFrame) -> pd.DataFrame:
    data["sepal_width"] = data["sepal_width"].astype(str)  # a text column (Parquet too)
    data.loc[1_234, "sepal_width"] = "3,5cm"  # row 1235, in the second chunk
    return data


def bad_nan(data: pd.DataFrame) -> pd.DataFrame:
    data.loc[2_001, "petal_length"] = np.nan  # row 2002, third chunk
    return data


def bad_inf(data: pd.DataFrame) -> pd.DataFrame:
    data.loc[6, "sepal_length"] = np.inf
    return data


def bad_clash(data: pd.DataFrame) -> pd.DataFrame:
    data["probability"] = 0.5
    return data


BAD_INPUTS = {
    "missing column": (bad_missing_column, "missing column(s) 'petal_width'"),
    "non-numeric": (bad_text, "column 'sepal_width', row 1235: '3,5cm' is not a number"),
    "NaN": (bad_nan, "column 'petal_length', row 2002: value is missing (empty or NaN)"),
    "infinite": (bad_inf, "column 'sepal_length', row 7: value inf is not finite"),
    "output column in input": (bad_clash, "column(s) 'probability' clash with the output"),
}


# Parquet features are refused by type: a text column never reaches the values.
PARQUET_MESSAGES = {"non-numeric": "column 'sepal_width' is large_string, not a number type"}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_names_column_and_row_and_leaves_nothing(
    model, tmp_path: Path, case: str, fmt: str
) -> None:
    make_bad, message = BAD_INPUTS[case]
    if fmt == "parquet":
        message = PARQUET_MESSAGES.get(case, message)
    data = make_bad(features(2_500))
    source = tmp_path / f"input.{fmt}"
    if fmt == "csv":
        data.to_csv(source, index=False)
    else:
        data.to_parquet(source)

    with pytest.raises(InputError) as error:
        score_file(model, source, tmp_path / "scored.csv", LINEAGE, chunk_rows=1_000)

    assert message in str(error.value)
    assert no_leftovers(tmp_path), list(tmp_path.iterdir())


def test_bad_input_keeps_an_existing_output(model, tmp_path: Path) -> None:
    target = tmp_path / "scored.csv"
    target.write_text("earlier result\n")
    source = tmp_path / "input.csv"
    bad_nan(features(2_500)).to_csv(source, index=False)
    with pytest.raises(InputError):
        score_file(model, source, target, LINEAGE, chunk_rows=1_000)
    assert target.read_text() == "earlier result\n"


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
