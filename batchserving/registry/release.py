"""A released model version as the registry states it: version, commit, pinned md5, metrics.

``prod_release`` answers "what is in prod" once for every reader (inference, promote,
redeploy, the asset events); ``release_of`` states any registered version the same way.
All of it is read from git (the tags, and ``dvc.lock`` and ``metrics.json`` at the
version's commit), never from a workspace's files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchserving.core.names import ARTIFACT, METRICS_FILE, PROD_STAGE
from batchserving.registry.git import show
from batchserving.registry.integrity import pinned_md5
from batchserving.registry.versions import ModelVersion, current_prod


@dataclass(frozen=True)
class Release:
    """A registered version with the model md5 its commit pins and the metrics it records."""

    version: ModelVersion
    model_md5: str
    metrics: dict[str, Any] = field(default_factory=dict)

    def deployment_record(self) -> dict[str, Any]:
        """The serving record of this release as prod (``model.json``'s fields)."""
        if self.version.assigned_at is None:
            raise ValueError(f"{ARTIFACT}@{self.version.version} is not assigned to {PROD_STAGE}")
        return {
            "artifact": ARTIFACT,
            "version": self.version.version,
            "commit": self.version.commit,
            "model_md5": self.model_md5,
            "metrics": self.metrics,
            # The prod tag's time: redeploying the same version writes the same record.
            "promoted_at": self.version.assigned_at.isoformat().replace("+00:00", "Z"),
            "stage": PROD_STAGE,
        }


def recorded_metrics(git_dir: Path, commit: str) -> dict[str, Any]:
    """The metrics.json committed at ``commit`` (empty if it has none or it is not JSON)."""
    text = show(git_dir, commit, METRICS_FILE) or ""
    try:
        metrics = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
    return metrics if isinstance(metrics, dict) else {}


def release_of(git_dir: Path, version: ModelVersion) -> Release:
    """``version`` as the registry in ``git_dir`` states it."""
    md5 = pinned_md5(git_dir, version.version, version.commit)
    return Release(version, md5, recorded_metrics(git_dir, version.commit))


def prod_release(git_dir: Path) -> Release | None:
    """The release in ``prod`` (the newest prod assignment), or None if there is none."""
    prod = current_prod(git_dir)
    return release_of(git_dir, prod) if prod else None
