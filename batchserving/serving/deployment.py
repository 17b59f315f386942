"""The deployment that batch inference serves: ``output/serving/model.json`` and its model.

A deployment switches with one atomic rename. The model is first written under its
content hash (``model-<md5>.joblib``, atomically), then ``model.json``, which names that
md5, replaces the old record: that rename is the switch. A run killed at any point
leaves either the old deployment or the new one, each whole. ``model.joblib`` is a
symlink to the current model for people and tools that look for it; readers go through
``model.json``. The previous model file is kept, so a reader that read the old record a
moment before the switch can still load the model it names. Inference loads only this
directory: never the training workspace, never dvc or git.

``model.json`` fields: ``artifact``, ``version`` (``vX.Y.Z``), ``commit`` (40 hex),
``model_md5``, ``metrics`` (that version's metrics.json), ``promoted_at`` (ISO 8601, UTC),
``stage`` (``prod``).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchserving.core.atomic import write_json, write_symlink, write_with
from batchserving.registry.integrity import file_md5, load_verified, verify_model

MODEL_FILE = "model.joblib"
RECORD_FILE = "model.json"
REQUIRED_FIELDS = ("artifact", "version", "commit", "model_md5", "promoted_at")


class DeploymentError(RuntimeError):
    """The deployment is missing, incomplete or does not match its record."""


class NothingDeployed(DeploymentError):
    """No model has been deployed yet (``model_selection`` has not promoted one)."""


@dataclass(frozen=True)
class Deployment:
    """A consistent pair: the model file and the record that describes it."""

    model_path: Path
    record: dict[str, Any]


def model_file(serving_dir: Path, md5: str) -> Path:
    """Where the model with content hash ``md5`` lives in the deployment."""
    return serving_dir / f"model-{md5}.joblib"


def deploy_model(serving_dir: Path, model_src: Path, record: dict[str, Any]) -> Deployment:
    """Install ``model_src`` and its record, switching at once.

    ``record["model_md5"]`` is the md5 the version pins; a ``model_src`` with other bytes
    raises ``ModelIntegrityError`` and the deployment stays as it was.
    """
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise DeploymentError(f"deployment record lacks {', '.join(missing)}")
    md5 = record["model_md5"]
    verify_model(model_src, f"{record['artifact']}@{record['version']}", md5)
    target = model_file(serving_dir, md5)
    if not target.exists() or file_md5(target) != md5:
        write_with(target, lambda tmp: shutil.copyfile(model_src, tmp))
    previous = _current_md5(serving_dir)
    write_json(serving_dir / RECORD_FILE, record)  # the switch
    write_symlink(serving_dir / MODEL_FILE, target.name)
    keep = {target.name, model_file(serving_dir, previous).name if previous else ""}
    for stale in serving_dir.glob("model-*.joblib"):
        if stale.name not in keep:
            stale.unlink(missing_ok=True)
    return Deployment(target, record)


def serves(serving_dir: Path, version: str, commit: str, md5: str) -> bool:
    """Whether the deployment is whole and is ``version`` at ``commit`` with the pinned ``md5``."""
    try:
        record = read_deployment(serving_dir, attempts=1).record
    except DeploymentError:
        return False
    return (record["version"], record["commit"], record["model_md5"]) == (version, commit, md5)


def load_deployed(deployment: Deployment) -> Any:
    """Unpickle the deployed model, its bytes checked against the md5 its record pins."""
    record = deployment.record
    what = f"{record['artifact']}@{record['version']}"
    return load_verified(deployment.model_path, what, record["model_md5"])


def read_record(serving_dir: Path) -> dict[str, Any]:
    """``model.json`` as it stands, the model file unchecked (``read_deployment`` checks it)."""
    return json.loads((serving_dir / RECORD_FILE).read_text(encoding="utf-8"))


def _current_md5(serving_dir: Path) -> str | None:
    """The md5 the current record names, if there is a readable one."""
    try:
        return read_record(serving_dir)["model_md5"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_deployment(serving_dir: Path, attempts: int = 3) -> Deployment:
    """The deployed model and its record, checked to belong together (md5).

    Raises NothingDeployed when nothing was ever deployed, DeploymentError when the
    files are unreadable or disagree after ``attempts`` reads.
    """
    record_path = serving_dir / RECORD_FILE
    if not record_path.exists() and not (serving_dir / MODEL_FILE).exists():
        raise NothingDeployed(
            f"no model deployed in {serving_dir}; run the model_selection DAG first "
            "(or `make redeploy` to restore the prod version)"
        )
    problem = ""
    for attempt in range(attempts):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            missing = [f for f in REQUIRED_FIELDS if f not in record]
            if missing:
                problem = f"{record_path} lacks {', '.join(missing)}"
            else:
                model_path = model_file(serving_dir, record["model_md5"])
                if file_md5(model_path) == record["model_md5"]:
                    return Deployment(model_path, record)
                problem = f"{model_path} does not match the md5 in {record_path}"
        except FileNotFoundError as exc:
            problem = f"{exc.filename} is missing"
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as exc:
            problem = f"{record_path} is not a valid deployment record ({exc})"
        if attempt + 1 < attempts:
            time.sleep(0.2)
    raise DeploymentError(f"broken deployment: {problem}; redeploy with `make redeploy`")
