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
