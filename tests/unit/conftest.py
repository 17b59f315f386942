"""What the unit tests share: training params, a params.yaml writer, random features, a
fitted Iris forest and a deployment of it, and the rows and scores the selection tests draw."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score

from batchserving import PROJECT_ROOT
from batchserving.serving.deployment import Deployment, deploy_model, file_md5
from batchserving.serving.scoring import Lineage, load_model
from batchserving.training.iris import CLASSES, FEATURES

LINEAGE = Lineage("v1.2.3", "c" * 40, "scheduled__2026-03-01T09:25:00+00:00")
DATE = datetime(2026, 3, 1, 9, 25, tzinfo=UTC)
# A valid train section, small enough to fit in a blink.
GOOD_TRAIN = {"random_state": 42, "n_estimators": 10, "max_depth": 3, "test_size": 0.3}
PROJECT_PARAMS = PROJECT_ROOT / "params.yaml"


def write_params(tmp_path: Path, text: str) -> Path:
    """``text`` as the params.yaml of ``tmp_path``."""
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def features(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows of random Iris features, the same for the same ``seed``."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.uniform(0.1, 8.0, (n, 4)).round(3), columns=FEATURES)


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


# The selection tests' rows: the true classes and two models' predictions of them.
METRICS = ("f1_macro", "accuracy")


@st.composite
def predictions(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True classes of n rows and two models' predictions (mostly right, as real models are)."""
    n = draw(st.integers(min_value=2, max_value=60))
    classes = st.integers(min_value=0, max_value=2)
    truth = np.array(draw(st.lists(classes, min_size=n, max_size=n)))

    def model() -> np.ndarray:
        wrong = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        other = draw(st.lists(st.integers(min_value=1, max_value=2), min_size=n, max_size=n))
        return np.where(wrong, (truth + np.array(other)) % 3, truth)

    return truth, model(), model()


def score(metric: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    """The primary metric as metrics.json holds it (scikit-learn, rounded to 6 digits)."""
    if metric == "accuracy":
        return round(float(accuracy_score(truth, predicted)), 6)
    return round(float(f1_score(truth, predicted, average="macro", zero_division=0)), 6)


# The gate's properties: no per-example deadline, as a bootstrap's time varies by machine.
fast = settings(deadline=None, max_examples=60)


def one_row_gain(n: int, challenger_only: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n rows of balanced classes; the champion misses ``challenger_only`` rows the other gets."""
    truth = np.arange(n) % 3
    champion = truth.copy()
    champion[:challenger_only] = (truth[:challenger_only] + 1) % 3
    return truth, champion, truth.copy()
