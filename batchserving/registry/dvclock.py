"""What a ``dvc.lock`` pins: the model's hash, the files a version needs, the test rows' basis."""

from __future__ import annotations

from typing import Any

import yaml

from batchserving.core.names import (
    DATA_PATH,
    EVALUATE_STAGE,
    METRICS_FILE,
    MODEL_PATH,
    PARAMS_FILE,
    PIPELINE,
    PIPELINE_LOCK,
    PREPARE_STAGE,
    TRAIN_STAGE,
)

# Git-tracked files the model pipeline writes itself; its lock file also pins its tracked
# deps. The data pipelines' lock files are not among them: their versions live on their
# own branches (batchserving.registry.dataref), never in a commit on main.
PIPELINE_FILES = (PIPELINE, PIPELINE_LOCK, PARAMS_FILE, METRICS_FILE)
# The params that decide which rows are test rows (see batchserving.training.iris.split_rows).
SPLIT_PARAMS = ("train.random_state", "train.test_size")


def _stages(dvc_lock_text: str | None) -> dict[str, Any]:
    return (yaml.safe_load(dvc_lock_text or "") or {}).get("stages", {})


def model_hash(dvc_lock_text: str | None) -> str | None:
    """The md5 that a ``dvc.lock`` text pins for the model, or None if it pins none."""
    outs = _stages(dvc_lock_text).get(TRAIN_STAGE, {}).get("outs", [])
    return next((out.get("md5") for out in outs if out.get("path") == MODEL_PATH), None)


def data_hash(dvc_lock_text: str | None) -> str | None:
    """The md5 that a ``dvc.lock`` text pins for the prepared data set, or None."""
    outs = _stages(dvc_lock_text).get(PREPARE_STAGE, {}).get("outs", [])
    return next((out.get("md5") for out in outs if out.get("path") == DATA_PATH), None)


def pinned_files(*dvc_lock_texts: str) -> set[str]:
    """Files a model version's commit must contain: the pipeline files and the deps pinned."""
    files = set(PIPELINE_FILES)
    stages = [stage for text in dvc_lock_texts for stage in _stages(text).values()]
    for stage in stages:
        files.update(dep["path"] for dep in stage.get("deps", []))
        files.update(stage.get("params", {}))
    return files


def evaluation_basis(dvc_lock_text: str | None) -> dict[str, Any]:
    """What decides the test rows in a ``dvc.lock``: the data's md5 and the split params."""
    stage = _stages(dvc_lock_text).get(EVALUATE_STAGE, {})
    data_md5 = next(
        (d.get("md5") for d in stage.get("deps", []) if d.get("path") == DATA_PATH), None
    )
    params = stage.get("params", {}).get(PARAMS_FILE, {})
    return {"data_md5": data_md5, **{p: params.get(p) for p in SPLIT_PARAMS}}
