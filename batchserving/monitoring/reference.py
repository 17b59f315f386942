"""The training reference of a model version, resolved from the registry and verified.

A served row names its ``model_version`` and ``model_commit``. The version must be
registered at exactly that commit (its ``iris-model@vX.Y.Z`` tag); the commit's
``dvc.lock`` pins the md5 of the data set the version was trained from (the prepare
stage's output) and of its model. Both files come from the DVC cache or remote by those
md5s and are checked against them before use (``batchserving.registry.remote``): the
features of the data set are the drift reference, and the model's own predictions on it
give the class shares its served predictions are compared with.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchserving.core.names import ARTIFACT, DATA_PATH, PIPELINE_LOCK
from batchserving.registry.dvclock import data_hash
from batchserving.registry.git import RegistryError, show
from batchserving.training.iris import CLASSES, FEATURES

# The prepared Iris CSV is about 4 KB; a reference far larger is not this pipeline's.
MAX_REFERENCE_BYTES = 64 << 20


@dataclass(frozen=True)
class Reference:
    """What served rows are compared with: the training features and predicted shares."""

    data_md5: str
    features: dict[str, Any]  # feature -> training values
    class_shares: dict[str, float]  # class -> share of the model's predictions on them
    rows: int


def reference_from(data: Any, model: Any, data_md5: str) -> Reference:
    """The reference of a training data set (a DataFrame) and the model trained on it."""
    import numpy as np

    predicted = np.asarray(model.predict(data[FEATURES]))
    shares = {c: float(np.mean(predicted == c)) for c in CLASSES}
    features = {f: data[f].to_numpy(dtype=np.float64) for f in FEATURES}
    return Reference(data_md5, features, shares, len(data))


def _read_data(path: Path, what: str) -> Any:
    import pandas as pd

    if path.stat().st_size > MAX_REFERENCE_BYTES:
        raise RegistryError(f"{what} is larger than {MAX_REFERENCE_BYTES} bytes")
    data = pd.read_csv(path)
    if any(f not in data.columns for f in FEATURES) or data[FEATURES].isna().any().any():
        raise RegistryError(f"{what} lacks a feature column or a value: not this pipeline's")
    return data


class RegistryReferences:
    """References of the versions in a model repo's registry, each resolved once per run."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._by_version: dict[tuple[str, str], Reference] = {}

    def __call__(self, version: str, commit: str) -> Reference:
        key = (version, commit)
        if key not in self._by_version:
            self._by_version[key] = self._resolve(version, commit)
        return self._by_version[key]

    def _resolve(self, version: str, commit: str) -> Reference:
        from batchserving.registry.integrity import load_verified, pinned_md5
        from batchserving.registry.remote import fetch_model, fetch_object
        from batchserving.registry.versions import registered_version

        registered = registered_version(self.repo, version)
        if registered.commit != commit:
            raise RegistryError(
                f"rows name {ARTIFACT}@{version} at commit {commit[:12]}, but the registry's "
                f"{version} is commit {registered.commit[:12]}: their lineage is not the "
                "registry's"
            )
        md5 = data_hash(show(self.repo, commit, PIPELINE_LOCK))
        if md5 is None:
            raise RegistryError(f"{ARTIFACT}@{version}'s {PIPELINE_LOCK} pins no {DATA_PATH}")
        with tempfile.TemporaryDirectory(prefix="monitoring-reference-") as tmp:
            what = f"the training data of {ARTIFACT}@{version}"
            data = _read_data(fetch_object(self.repo, md5, Path(tmp) / "data.csv", what), what)
            model_md5 = pinned_md5(self.repo, version, commit)
            model_path = fetch_model(self.repo, registered, Path(tmp) / "model.joblib")
            model = load_verified(model_path, f"{ARTIFACT}@{version}", model_md5)
        return reference_from(data, model, md5)
