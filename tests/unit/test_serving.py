"""The deployment switches whole: one record, the model it names, nothing half-done."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchserving.registry.integrity import ModelIntegrityError
from batchserving.serving.deployment import (
    DeploymentError,
    NothingDeployed,
    deploy_model,
    file_md5,
    read_deployment,
    serves,
)

RECORD = {
    "artifact": "iris-model",
    "commit": "a" * 40,
    "promoted_at": "2026-11-28T00:30:00+00:00",
    "stage": "prod",
}


def model(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.bin"
    path.write_bytes(f"model {name}".encode())
    return path


def deploy(serving: Path, src: Path, version: str, **extra: object):
    """Deploy ``src`` as ``version``, pinned to its own md5 (as a verified fetch gives it)."""
    record = {**RECORD, "version": version, "model_md5": file_md5(src), **extra}
    return deploy_model(serving, src, record)


def test_nothing_deployed(tmp_path: Path) -> None:
    with pytest.raises(NothingDeployed, match="run the model_selection DAG first"):
        read_deployment(tmp_path / "serving")


def test_each_deploy_switches_record_and_model_together(tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    for n, name in enumerate(["a", "b", "c"], start=1):
        src = model(tmp_path, name)
        deploy(serving, src, f"v0.0.{n}")
        current = read_deployment(serving)
        assert current.record["version"] == f"v0.0.{n}"
        assert current.model_path.read_bytes() == src.read_bytes()
        assert (serving / "model.joblib").read_bytes() == src.read_bytes()
    # The current model and the one before it are kept (a reader may hold the old record).
    kept = sorted(p.name for p in serving.glob("model-*.joblib"))
    expected = sorted(f"model-{file_md5(model(tmp_path, n))}.joblib" for n in ("b", "c"))
    assert kept == expected


def test_a_deploy_that_fails_before_the_switch_leaves_the_old_one_whole(tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    deploy(serving, model(tmp_path, "old"), "v0.0.1")
    before = {p.name: p.read_bytes() for p in serving.iterdir()}

    # The new model file is written, then the record cannot be: the switch never happens.
    with pytest.raises(TypeError):
        deploy(serving, model(tmp_path, "new"), "v0.0.2", metrics=object())

    current = read_deployment(serving)
    assert current.record["version"] == "v0.0.1"
    assert current.model_path.read_bytes() == b"model old"
    assert (serving / "model.json").read_bytes() == before["model.json"]
    assert not [p for p in serving.iterdir() if p.name.endswith(".tmp")]


def test_a_corrupted_model_is_refused(tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    deployed = deploy(serving, model(tmp_path, "a"), "v0.0.1")
    deployed.model_path.write_bytes(b"garbage")
    with pytest.raises(DeploymentError, match="does not match the md5.*make redeploy"):
        read_deployment(serving, attempts=1)


def test_a_model_other_than_the_pinned_one_is_never_deployed(tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    good = deploy(serving, model(tmp_path, "good"), "v0.0.1")
    before = {p.name: p.read_bytes() for p in serving.iterdir()}
    pinned = file_md5(model(tmp_path, "expected"))
    record = {**RECORD, "version": "v0.0.2", "model_md5": pinned}
    with pytest.raises(ModelIntegrityError, match=f"pins {pinned}.*not loaded.*dvc push"):
        deploy_model(serving, model(tmp_path, "tampered"), record)
    assert {p.name: p.read_bytes() for p in serving.iterdir()} == before
    assert read_deployment(serving).record == good.record


def test_serves_needs_version_commit_and_the_pinned_md5(tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    deployed = deploy(serving, model(tmp_path, "a"), "v0.0.1")
    md5 = deployed.record["model_md5"]
    assert serves(serving, "v0.0.1", RECORD["commit"], md5)
    assert not serves(serving, "v0.0.2", RECORD["commit"], md5)
    assert not serves(serving, "v0.0.1", "b" * 40, md5)
    assert not serves(serving, "v0.0.1", RECORD["commit"], "0" * 32)
    deployed.model_path.write_bytes(b"replaced in the serving cache")
    assert not serves(serving, "v0.0.1", RECORD["commit"], md5)
