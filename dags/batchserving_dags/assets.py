"""What the DAGs produce and consume, and the extras of each asset's events.

Producers name an asset in ``outlets``; ``compare`` and ``batch_inference`` name theirs
in ``inlets``. A BashOperator cannot set an event's extras itself, so each producing
task has a ``post_execute`` hook here: run in the task process right after its command
succeeded, it reads the command's result (its XCom) and what the command left in the
model repo (git, ``dvc.lock``, ``model.json``, ``state.json``) and yields ``Metadata``
for the asset, which Airflow attaches to the event (a hook must be a generator for
that). The UI shows these extras on the asset's page and in the asset graph.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset

from batchserving.core.names import (
    ARTIFACT,
    MONITORING_DIR,
    MONITORING_METRICS,
    PREDICTIONS_DIR,
    PROD_STAGE,
    SERVING_DIR,
    WEATHER_DIR,
    WEATHER_RAW_DIR,
    WEATHER_STATE_FILE,
)

if TYPE_CHECKING:
    from airflow.sdk import Metadata

# The URIs use a private `x-` scheme: the model repo is no provider's storage.
MODEL_VERSIONS = Asset(name=ARTIFACT, uri=f"x-model-repo://{ARTIFACT}/versions")
PROD_DEPLOYMENT = Asset(name=f"{ARTIFACT}-{PROD_STAGE}", uri=f"x-model-repo://{ARTIFACT}/prod")
PREDICTIONS = Asset(name="iris-predictions", uri=f"x-model-repo://{PREDICTIONS_DIR}")
WEATHER_RAW = Asset(name="kma-forecast-raw", uri=f"x-model-repo://{WEATHER_RAW_DIR}")
WEATHER_TABLES = Asset(name="kma-forecast-tables", uri=f"x-model-repo://{WEATHER_DIR}/tables")
MONITORING = Asset(name="iris-monitoring", uri=f"x-model-repo://{MONITORING_DIR}")

METRICS_SHOWN = ("accuracy", "f1_macro")


def _repo() -> Path:
    from batchserving.registry.workspace import workspace_path

    return workspace_path()


def _serving_record() -> dict[str, Any]:
    """The deployment record the task just wrote or read, in this workspace."""
    from batchserving.serving.deployment import read_record

    return read_record(_repo() / SERVING_DIR)


def _version_facts(version: str) -> dict[str, Any]:
    """Commit, model md5 and metrics of a registered version, as the registry states it."""
    from batchserving.registry.release import release_of
    from batchserving.registry.versions import registered_version

    repo = _repo()
    release = release_of(repo, registered_version(repo, version))
    return {
        "version": version,
        "commit": release.version.commit,
        "model_md5": release.model_md5,
        "metrics": {k: release.metrics.get(k) for k in METRICS_SHOWN},
    }


def model_version_event(context: dict, result: Any) -> Iterator[Metadata]:
    """register_model: the version the commit's model has (new, or the one it already had)."""
    from airflow.sdk import Metadata

    from batchserving.core.results import read_result

    registered = read_result(result, "the register step")
    facts = _version_facts(registered["version"])
    yield Metadata(MODEL_VERSIONS, {**facts, "new": bool(registered["new"])})


def prod_extras(record: dict[str, Any]) -> dict[str, Any]:
    """A prod event's extras from the deployment record: version, commit, md5, metrics, when.

    The promote task's event and ``make rollback``/``make redeploy``'s (``scripts.prod_event``)
    carry the same fields.
    """
    return {
        "version": record.get("version"),
        "commit": record.get("commit"),
        "model_md5": record.get("model_md5"),
        "metrics": {k: record.get("metrics", {}).get(k) for k in METRICS_SHOWN},
        "promoted_at": record.get("promoted_at"),
    }


def prod_event(context: dict, result: Any) -> Iterator[Metadata]:
    """promote: the deployment record (version, commit, md5, metrics, when)."""
    from airflow.sdk import Metadata

    yield Metadata(PROD_DEPLOYMENT, prod_extras(_serving_record()))


def predictions_event(context: dict, result: Any) -> Iterator[Metadata]:
    """predict: the file written, its rows, and the model version that scored them."""
    from airflow.sdk import Metadata

    from batchserving.core.results import read_result

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
    from airflow.sdk import Metadata

    from batchserving.core.results import read_result

    run_at = context["task"].env.get("WEATHER_RUN_AT", "")
    commit = read_result(result, "the fetch step")["commit"]
    yield Metadata(WEATHER_RAW, {"issuance": _issuance_at(run_at), "commit": commit})


def weather_tables_event(context: dict, result: Any) -> Iterator[Metadata]:
    """preprocess: the issuances in the tables, the latest one, those quarantined, the commit."""
    from airflow.sdk import Metadata

    from batchserving.core.results import read_result

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


def monitoring_event(context: dict, result: Any) -> Iterator[Metadata]:
    """monitor: the day monitored, its drift share and accuracy, the versions, the commit."""
    from airflow.sdk import Metadata

    from batchserving.core.results import read_result

    commit = read_result(result, "the monitor step")["commit"]
    day = json.loads((_repo() / MONITORING_METRICS).read_text(encoding="utf-8"))
    keys = ("day", "rows", "drift_detected", "drift_share", "accuracy", "f1_macro", "versions")
    yield Metadata(MONITORING, {**{key: day.get(key) for key in keys}, "commit": commit})
