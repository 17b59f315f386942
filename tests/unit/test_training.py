"""Training on Iris: the split, the fit and the scores are the same on every run."""

from __future__ import annotations

from batchserving.core.params import TrainParams
from batchserving.training.iris import CLASSES, FEATURES, split_rows
from batchserving.training.metrics import score_model
from stages.prepare import iris_frame
from stages.train import fit_model
from tests.unit.conftest import GOOD_TRAIN


def test_training_is_seeded_end_to_end() -> None:
    data = iris_frame()
    assert list(data.columns) == [*FEATURES, "species"] and len(data) == 150
    params = TrainParams.from_mapping(GOOD_TRAIN)
    train_a, test_a = split_rows(data, params.test_size, params.random_state)
    train_b, test_b = split_rows(data, params.test_size, params.random_state)
    assert test_a.index.equals(test_b.index)
    metrics_a = score_model(fit_model(train_a, params), test_a)
    metrics_b = score_model(fit_model(train_b, params), test_b)
    assert metrics_a == metrics_b
    assert set(metrics_a["f1_per_class"]) == set(CLASSES)
    assert metrics_a["n_test"] == 45
    assert 0.8 <= metrics_a["accuracy"] <= 1.0
