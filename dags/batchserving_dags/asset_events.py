"""The extras of the DAGs' asset events, read from the model repo after a task's command.

The assets are declared in the package (``batchserving_dags``): producers name them as
``outlets``, ``batch_inference`` and ``compare`` as inlets. A BashOperator cannot set an
event's extras itself, so each producing task has a ``post_execute`` hook (declared in
the package) that runs the function of the same name here, in the task process, right
after the command succeeded: it reads what the command left in the model repo (git,
``dvc.lock``, ``model.json``, the predictions file) and yields ``Metadata`` for the
asset, which Airflow attaches to the event. The UI shows these extras on the asset's
page and in the asset graph's events. Imported only when a task runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import Metadata

from batchserving.core.names import (
    ARTIFACT,
    METRICS_FILE,
    PIPELINE_LOCK,
    SERVING_DIR,
    WEATHER_RAW_DIR,
    WEATHER_STATE_FILE,
)
from batchserving.core.results import read_result
from batchserving.registry.dvclock import model_hash
from batchserving.registry.git import git
from batchserving.registry.workspace import workspace_path
from batchserving.serving.deployment import read_record
from batchserving_dags import (
    MODEL_VERSIONS,
    PREDICTIONS,
    PROD_DEPLOYMENT,
    WEATHER_RAW,
    WEATHER_TABLES,
)

METRICS_SHOWN = ("accuracy", "f1_macro")


def _repo() -> Path:
    return workspace_path()


def _serving_record() -> dict[str, Any]:
    """The deployment record the task just wrote or read, in this workspace."""
    return read_record(_repo() / SERVING_DIR)


def _git(*args: str) -> str:
    return git(_repo(), *args).strip()


def _version_facts(version: str) -> dict[str, Any]:
    """Commit, model md5 and metrics of a registered version, read from its tag."""
    commit = _git("rev-list", "-n1", f"{ARTIFACT}@{version}")
    metrics = json.loads(_git("show", f"{commit}:{METRICS_FILE}"))
    return {
        "version": version,
        "commit": commit,
        "model_md5": model_hash(_git("show", f"{commit}:{PIPELINE_LOCK}")),
        "metrics": {k: metrics.get(k) for k in METRICS_SHOWN},
    }


def model_version_event(context: dict, result: Any) -> Iterator[Metadata]:
    """register_model: the version the commit's model has (new, or the one it already had)."""
    registered = read_result(result, "the register step")
    facts = _version_facts(registered["version"])
    yield Metadata(MODEL_VERSIONS, {**facts, "new": bool(registered["new"])})


def prod_event(context: dict, result: Any) -> Iterator[Metadata]:
    """promote: the deployment record (version, commit, md5, metrics, when)."""
    record = _serving_record()
    yield Metadata(
        PROD_DEPLOYMENT,
        {
            "version": record.get("version"),
            "commit": record.get("commit"),
            "model_md5": record.get("model_md5"),
            "metrics": {k: record.get("metrics", {}).get(k) for k in METRICS_SHOWN},
            "promoted_at": record.get("promoted_at"),
        },
    )


def predictions_event(context: dict, result: Any) -> Iterator[Metadata]:
    """predict: the file written, its rows, and the model version that scored them."""
    predicted = read_result(result, "the predict step")
    yield Metadata(
        PREDICTIONS,
        {key: predicted[key] for key in ("path", "rows", "model_version", "model_commit")},
    )


def _issuance_at(run_at: str) -> str | None:
    """The newest stored issuance (YYYYMMDDHHMM, KST) not after ``run_at``: the run's."""
    limit = datetime.fromisoformat(run_at).strftime("%Y%m%d%H%M")
    names = [p.stem for p in (_repo() / WEATHER_RAW_DIR).glob("*.json") if p.stem <= limit]
    return max(names, default=None)


def weather_raw_event(context: dict, result: Any) -> Iterator[Metadata]:
    """fetch: the issuance this run stored, and the data version's commit."""
    run_at = context["task"].env.get("WEATHER_RUN_AT", "")
    commit = read_result(result, "the fetch step")["commit"]
    yield Metadata(WEATHER_RAW, {"issuance": _issuance_at(run_at), "commit": commit})


def weather_tables_event(context: dict, result: Any) -> Iterator[Metadata]:
    """preprocess: the issuances in the tables, the latest one, those quarantined, the commit."""
    state = json.loads((_repo() / WEATHER_STATE_FILE).read_text(encoding="utf-8"))
    done = sorted(state.get("done", []))
    yield Metadata(
        WEATHER_TABLES,
        {
            "latest_issuance": done[-1] if done else None,
            "issuances": len(done),
            "quarantined": sorted(state.get("quarantined", {})),
            "commit": read_result(result, "the preprocess step")["commit"],
        },
    )
