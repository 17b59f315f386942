"""What the unit tests share: training params, a params.yaml writer, a fitted Iris forest
and a deployment of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import joblib
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

from batchserving import PROJECT_ROOT
from batchserving.serving.deployment import Deployment, deploy_model, file_md5
from batchserving.serving.scoring import Lineage, load_model
from batchserving.training.iris import CLASSES, FEATURES

LINEAGE = Lineage("v1.2.3", "c" * 40, "scheduled__2026-03-01T09:25:00+00:00")
# A valid train section, small enough to fit in a blink.
GOOD_TRAIN = {"random_state": 42, "n_estimators": 10, "max_depth": 3, "test_size": 0.3}
PROJECT_PARAMS = PROJECT_ROOT / "params.yaml"


def write_params(tmp_path: Path, text: str) -> Path:
    """``text`` as the params.yaml of ``tmp_path``."""
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small forest fitted on Iris with class names, as stages.train makes it."""
    iris = load_iris()
    frame = pd.DataFrame(iris.data, columns=FEATURES)
    model = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0)
    model.fit(frame, [CLASSES[i] for i in iris.target])
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    joblib.dump(model, path)
    return path


def deployment_record(model_file: Path) -> dict:
    """The record of ``model_file`` deployed as ``LINEAGE``'s version, pinned to its md5."""
    return {
        "artifact": "iris-model",
        "version": LINEAGE.model_version,
        "commit": LINEAGE.model_commit,
        "promoted_at": "2026-03-01T00:30:00Z",
        "stage": "prod",
        "model_md5": file_md5(model_file),
    }


@pytest.fixture(scope="session")
def model(model_file: Path):
    return load_model(Deployment(model_file, deployment_record(model_file)))


@pytest.fixture
def workdir(tmp_path: Path, model_file: Path) -> Path:
    """A directory laid out like a model repo: params.yaml and a deployment."""
    shutil.copy(PROJECT_PARAMS, tmp_path / "params.yaml")
    deploy_model(tmp_path / "output/serving", model_file, deployment_record(model_file))
    return tmp_path
