"""The evaluate stage's feature importance: every feature once, largest first."""

from __future__ import annotations

from batchserving.core.params import TrainParams
from batchserving.training.iris import FEATURES, split_rows
from stages.evaluate import feature_importance
from stages.prepare import iris_frame
from stages.train import fit_model
from tests.unit.conftest import GOOD_TRAIN


def test_feature_importance_is_sorted_and_complete() -> None:
    params = TrainParams.from_mapping(GOOD_TRAIN)
    train, _ = split_rows(iris_frame(), params.test_size, params.random_state)
    frame = feature_importance(fit_model(train, params))
    assert sorted(frame["feature"]) == sorted(FEATURES)
    assert list(frame["importance"]) == sorted(frame["importance"], reverse=True)


def test_a_model_other_than_the_one_dvc_lock_pins_is_never_unpickled(tmp_path) -> None:
    """evaluate checks the model's md5 against dvc.lock's train output before loading it."""
    import pickle
    import shutil
    import subprocess
    import sys

    from batchserving import PROJECT_ROOT
    from batchserving.registry.dvclock import model_hash

    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('pwned')",))

    shutil.copy(PROJECT_ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copy(PROJECT_ROOT / "dvc.lock", tmp_path / "dvc.lock")  # pins the real model
    env = {"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"}
    run = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True}
    prepared = subprocess.run([sys.executable, "-m", "stages.prepare"], **run)
    assert prepared.returncode == 0, prepared.stderr
    model = tmp_path / "output" / "model" / "model.joblib"
    model.parent.mkdir(parents=True)
    model.write_bytes(pickle.dumps(Payload()))

    evaluated = subprocess.run([sys.executable, "-m", "stages.evaluate"], **run)
    assert evaluated.returncode != 0
    [line] = evaluated.stderr.strip().splitlines()
    pinned = model_hash((PROJECT_ROOT / "dvc.lock").read_text(encoding="utf-8"))
    assert f"pins {pinned}" in line and "not loaded" in line
    assert not marker.exists()
    assert not (tmp_path / "metrics.json").exists()
