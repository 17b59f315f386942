"""The deployment that batch inference serves: ``output/serving/model.joblib`` + ``model.json``.

Promotion writes the model first and ``model.json`` last, each atomically; ``model.json``
carries the model's md5, so a reader that lands between the two renames sees a mismatch
and reads again instead of pairing a new model with an old record. Inference loads only
this directory: never the training workspace, never dvc or git.

``model.json`` fields: ``artifact``, ``version`` (``vX.Y.Z``), ``commit`` (40 hex),
``model_md5``, ``metrics`` (that version's metrics.json), ``promoted_at`` (ISO 8601, UTC),
``stage`` (``prod``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.atomic import write_json, write_with

SERVING_DIR = "output/serving"
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


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes (the hash DVC pins in dvc.lock)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def deploy_model(serving_dir: Path, model_src: Path, record: dict[str, Any]) -> Deployment:
    """Atomically install ``model_src`` and its record (``model_md5`` is filled in here)."""
    missing = [f for f in REQUIRED_FIELDS if f != "model_md5" and f not in record]
    if missing:
        raise DeploymentError(f"deployment record lacks {', '.join(missing)}")
    record = {**record, "model_md5": file_md5(model_src)}
    write_with(serving_dir / MODEL_FILE, lambda tmp: shutil.copyfile(model_src, tmp))
    write_json(serving_dir / RECORD_FILE, record)
    return Deployment(serving_dir / MODEL_FILE, record)


def read_deployment(serving_dir: Path, attempts: int = 3) -> Deployment:
    """The deployed model and its record, checked to belong together.

    Raises NothingDeployed when nothing was ever deployed, DeploymentError when the
    files are unreadable or disagree after ``attempts`` reads (a deploy in flight
    settles within one retry).
    """
    model_path, record_path = serving_dir / MODEL_FILE, serving_dir / RECORD_FILE
    if not model_path.exists() and not record_path.exists():
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
            elif file_md5(model_path) != record["model_md5"]:
                problem = f"{model_path} does not match the md5 in {record_path}"
            else:
                return Deployment(model_path, record)
        except FileNotFoundError as exc:
            problem = f"{exc.filename} is missing"
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as exc:
            problem = f"{record_path} is not a valid deployment record ({exc})"
        if attempt + 1 < attempts:
            time.sleep(0.2)
    raise DeploymentError(f"broken deployment: {problem}; redeploy with `make redeploy`")
