"""A monitored day from its files: labels joined, versions apart, bad files skipped whole.

The reference is Iris as the prepare stage writes it with the session's forest; prediction
files are written by batch scoring itself (``write_sample_predictions``, ``score_file``).
Live accuracy and macro F1 are checked against scikit-learn's on the same rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score, f1_score

from batchserving import PROJECT_ROOT
from batchserving.core.params import MonitoringParams
from batchserving.monitoring.day import monitor_day
from batchserving.monitoring.days import day_files, window
from batchserving.monitoring.reference import reference_from
from batchserving.monitoring.summary import summarise
from batchserving.registry.git import RegistryError
from batchserving.serving.predict import prediction_path
from batchserving.serving.scoring import Lineage, score_file, write_sample_predictions
from batchserving.training.iris import CLASSES, FEATURES
from stages.prepare import iris_frame
from tests.unit.conftest import PROJECT_PARAMS

DAY = date(2026, 3, 1)
START, END = window(DAY)  # 2026-02-28T15:00Z .. 2026-03-01T15:00Z
OLD = Lineage("v0.0.1", "a" * 40, "scheduled__old")
NEW = Lineage("v0.0.2", "b" * 40, "scheduled__new")


@pytest.fixture
def params() -> MonitoringParams:
    return MonitoringParams.load(PROJECT_PARAMS)


@pytest.fixture
def resolve(model):
    reference = reference_from(iris_frame(), model, "d" * 32)

    def resolve(version: str, commit: str):
        if version not in (OLD.model_version, NEW.model_version):
            raise RegistryError(f"iris-model has no registered version {version!r}")
        return reference

    return resolve


def scheduled(model, root: Path, lineage: Lineage, at: datetime, n: int = 5) -> Path:
    path = prediction_path(at, root)
    write_sample_predictions(model, n, at, lineage, path)
    return path


def truth_of(path: Path) -> tuple[list[str], list[str]]:
    """(true, predicted) labels of a scheduled file, joined by hand from Iris."""
    frame = pd.read_csv(path)
    target = load_iris().target
    return [CLASSES[target[i]] for i in frame["iris_row"]], frame["predicted_class"].tolist()


def test_live_accuracy_is_scikit_learns_and_each_version_is_reported(
    model, tmp_path: Path, params, resolve
) -> None:
    files = [
        scheduled(model, tmp_path, OLD if i < 6 else NEW, START + timedelta(minutes=5 * i))
        for i in range(10)
    ]
    # A large batch of the day with labels for some of its rows (1-based row numbers).
    batch = pd.DataFrame(load_iris().data[::3], columns=FEATURES)
    (tmp_path / "input.csv").write_text(batch.to_csv(index=False))
    big = prediction_path(START + timedelta(hours=3), tmp_path).with_suffix(".parquet")
    score_file(model, tmp_path / "input.csv", big, NEW, 1000)
    labelled_rows = [1, 2, 10, 40]
    labels = [CLASSES[load_iris().target[::3][r - 1]] for r in labelled_rows]
    big.with_name(big.stem + ".labels.csv").write_text(
        "row,species\n" + "".join(f"{r},{s}\n" for r, s in zip(labelled_rows, labels, strict=True))
    )

    result = monitor_day(tmp_path, DAY, params, resolve)
    day = summarise(result, 0.8, params.min_labelled_rows, "report.html")

    truth, predicted = [], []
    for path in files:
        t, p = truth_of(path)
        truth += t
        predicted += p
    scored = pd.read_parquet(big)
    truth += labels
    predicted += [str(scored["predicted_class"][r - 1]) for r in labelled_rows]
    assert day["labelled_rows"] == len(truth) == 54
    assert day["accuracy"] == round(accuracy_score(truth, predicted), 4)
    assert day["f1_macro"] == round(f1_score(truth, predicted, average="macro"), 4)
    versions = {v["version"]: v["rows"] for v in day["versions"].values()}
    assert versions == {"v0.0.1": 30, "v0.0.2": 20 + len(batch)}
    assert day["rows"] == 50 + len(batch) and day["files"] == 11


def test_the_day_is_its_kst_window_and_nothing_else(model, tmp_path: Path) -> None:
    for at in (START - timedelta(seconds=1), START, END - timedelta(minutes=5), END):
        scheduled(model, tmp_path, OLD, at)
    (tmp_path / START.strftime("%Y-%m-%d") / "scored.csv").write_text("not the day's\n")
    # A link in the day's folder could point at any file: it is not read.
    secret = tmp_path / "elsewhere.csv"
    secret.write_text("not a prediction\n")
    link = prediction_path(START + timedelta(minutes=10), tmp_path)
    link.symlink_to(secret)
    found = [f.at for f in day_files(tmp_path, DAY, 100)]
    assert found == [START, END - timedelta(minutes=5)]


def test_a_run_started_by_a_prod_event_is_part_of_its_day(model, tmp_path: Path) -> None:
    # Its run_after keeps microseconds, and so does its file name (...T01-02-03.412000Z.csv).
    promoted = START + timedelta(hours=2, seconds=3, microseconds=412000)
    scheduled(model, tmp_path, OLD, promoted)
    scheduled(model, tmp_path, OLD, START)
    assert [f.at for f in day_files(tmp_path, DAY, 100)] == [START, promoted]


def test_a_file_bad_half_way_adds_nothing_and_is_named(
    model, tmp_path: Path, params, resolve
) -> None:
    scheduled(model, tmp_path, OLD, START)
    rows = pd.DataFrame(np.tile(load_iris().data, (20, 1)), columns=FEATURES)  # 3000 rows
    (tmp_path / "input.csv").write_text(rows.to_csv(index=False))
    big = prediction_path(START + timedelta(hours=1), tmp_path)
    score_file(model, tmp_path / "input.csv", big, NEW, 1000)
    lines = big.read_text().splitlines()
    lines[2500] = lines[2500].replace("v0.0.2", "not-a-version")
    big.write_text("\n".join(lines) + "\n")

    chunked = params.model_copy(update={"read_chunk_rows": 1000})  # the bad row is in chunk 3
    result = monitor_day(tmp_path, DAY, chunked, resolve)
    day = summarise(result, 0.8, params.min_labelled_rows, "report.html")

    assert day["rows"] == 5  # the bad file's first two chunks were not counted
    [skipped] = day["skipped"]
    assert skipped["file"] == str(big)
    assert "column 'model_version', row 2500: 'not-a-version' is not vX.Y.Z" in skipped["reason"]
    assert "1 unreadable prediction file(s) skipped" in day["alert"]


def test_rows_of_an_unknown_version_are_reported_not_tested(
    model, tmp_path: Path, params, resolve
) -> None:
    scheduled(model, tmp_path, Lineage("v9.9.9", "c" * 40, "r"), START, n=50)
    day = summarise(monitor_day(tmp_path, DAY, params, resolve), 0.8, 30, "report.html")
    assert [u["version"] for u in day["unresolved"]] == ["v9.9.9"]
    assert day["drift"]["tests"] == [] and "v9.9.9" in day["alert"]


@pytest.mark.parametrize("value", ["", "yesterday", "2026-02-30", "2026-3-1"])
def test_a_bad_day_is_one_line_and_writes_nothing(tmp_path: Path, value: str) -> None:
    (tmp_path / "params.yaml").write_text(PROJECT_PARAMS.read_text())
    result = subprocess.run(
        [sys.executable, "-m", "stages.monitor_predictions"],
        cwd=tmp_path,
        env={**os.environ, "MONITOR_DAY": value, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert (
        line.startswith("monitor_predictions: the day to monitor") and "nothing was written" in line
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
