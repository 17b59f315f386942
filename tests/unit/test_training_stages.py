"""The training stages: params validation, seeded training, scoring, registry keys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from batchserving import PROJECT_ROOT
from batchserving.core.atomic import write_json, write_private, write_text
from batchserving.core.params import ParamsError, RegistryParams, TrainParams, load_mapping
from batchserving.registry.dvclock import model_hash, pinned_files
from batchserving.training.iris import CLASSES, FEATURES, split_rows
from batchserving.training.metrics import score_model
from stages.evaluate import feature_importance
from stages.prepare import iris_frame
from stages.train import fit_model

GOOD = {"random_state": 42, "n_estimators": 10, "max_depth": 3, "test_size": 0.3}


def test_good_params_parse() -> None:
    assert TrainParams.from_mapping(GOOD) == TrainParams(
        random_state=42, n_estimators=10, max_depth=3, test_size=0.3
    )
    assert TrainParams.from_mapping({**GOOD, "max_depth": None}).max_depth is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("n_estimators", -1, "'train.n_estimators' = -1 is out of range; allowed: an integer"),
        ("n_estimators", 0, "'train.n_estimators' = 0 is out of range"),
        ("n_estimators", "100", "'train.n_estimators' = '100' has the wrong type (str)"),
        ("n_estimators", True, "'train.n_estimators' = True has the wrong type (bool)"),
        ("n_estimators", 2.5, "'train.n_estimators' = 2.5 has the wrong type (float)"),
        ("test_size", 0.0, "'train.test_size' = 0.0 is out of range; allowed: a number strictly"),
        ("test_size", 1.0, "'train.test_size' = 1.0 is out of range"),
        ("test_size", 1.5, "'train.test_size' = 1.5 is out of range"),
        ("test_size", float("nan"), "'train.test_size' = nan is not finite"),
        ("max_depth", 0, "'train.max_depth' = 0 is out of range; allowed: null (unlimited)"),
        ("random_state", -5, "'train.random_state' = -5 is out of range"),
    ],
)
def test_bad_params_name_the_key_and_allowed_values(key: str, value: object, message: str) -> None:
    with pytest.raises(ParamsError) as excinfo:
        TrainParams.from_mapping({**GOOD, key: value})
    assert message in str(excinfo.value)


def test_missing_key_is_named() -> None:
    params = {k: v for k, v in GOOD.items() if k != "test_size"}
    with pytest.raises(ParamsError, match=r"'train.test_size' is missing; allowed: a number"):
        TrainParams.from_mapping(params)


def test_params_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    with pytest.raises(ParamsError, match="not found"):
        load_mapping("train", path)
    path.write_text("train: [1, 2\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_mapping("train", path)
    path.write_text("other: {}\n")
    with pytest.raises(ParamsError, match="section 'train' is missing"):
        load_mapping("train", path)


def test_registry_identity_is_validated() -> None:
    ident = RegistryParams.from_mapping({"git_name": "Bot", "git_email": "bot@example.invalid"})
    assert ident.git_env()["GIT_COMMITTER_EMAIL"] == "bot@example.invalid"
    with pytest.raises(ParamsError, match="registry.git_email"):
        RegistryParams.from_mapping({"git_name": "Bot", "git_email": "nobody"})


def test_training_is_seeded_end_to_end() -> None:
    data = iris_frame()
    assert list(data.columns) == [*FEATURES, "species"] and len(data) == 150
    params = TrainParams.from_mapping(GOOD)
    train_a, test_a = split_rows(data, params.test_size, params.random_state)
    train_b, test_b = split_rows(data, params.test_size, params.random_state)
    assert test_a.index.equals(test_b.index)
    metrics_a = score_model(fit_model(train_a, params), test_a)
    metrics_b = score_model(fit_model(train_b, params), test_b)
    assert metrics_a == metrics_b
    assert set(metrics_a["f1_per_class"]) == set(CLASSES)
    assert metrics_a["n_test"] == 45
    assert 0.8 <= metrics_a["accuracy"] <= 1.0


def test_feature_importance_is_sorted_and_complete() -> None:
    params = TrainParams.from_mapping(GOOD)
    train, _ = split_rows(iris_frame(), params.test_size, params.random_state)
    frame = feature_importance(fit_model(train, params))
    assert sorted(frame["feature"]) == sorted(FEATURES)
    assert list(frame["importance"]) == sorted(frame["importance"], reverse=True)


LOCK_TEXT = textwrap.dedent(
    """\
    schema: '2.0'
    stages:
      train:
        cmd: python -m stages.train
        deps:
        - path: stages/train.py
          md5: aaa
        params:
          params.yaml:
            train.n_estimators: 100
        outs:
        - path: output/model/model.joblib
          md5: 6c1be1efb0d060cfb7356f18ed2299e4
    """
)


def test_model_hash_and_pinned_files() -> None:
    assert model_hash(LOCK_TEXT) == "6c1be1efb0d060cfb7356f18ed2299e4"
    assert model_hash(None) is None
    assert model_hash("schema: '2.0'\nstages: {}\n") is None
    assert {"stages/train.py", "params.yaml", "dvc.lock", "metrics.json"} <= pinned_files(LOCK_TEXT)


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


def test_pinned_files_cover_the_weather_pipeline() -> None:
    weather_lock = textwrap.dedent(
        """\
        schema: '2.0'
        stages:
          fetch_weather:
            deps:
            - path: stages/fetch_weather.py
              md5: 581f25f6c5cb5162e7e3c6efdce63018
            params:
              params.yaml:
                weather.nx: 60
        """
    )
    files = pinned_files(LOCK_TEXT, weather_lock)
    assert {"weather/dvc.yaml", "weather/dvc.lock", "stages/fetch_weather.py"} <= files
    assert "stages/train.py" in files
