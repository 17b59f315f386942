"""Champion/challenger comparison of ``model_selection``: the latest version against ``prod``.

    python -m batchserving.selection.compare [--output comparison.json]

Run it under the repo lock, after the pipeline is up to date and registered. It syncs
the workspace with the server first and changes nothing there. The comparison is its
last output line (JSON): the task's XCom, so the next steps can run on any worker.

Challenger: the latest registered ``iris-model`` version; its metrics are the workspace's
``metrics.json``. Champion: the version whose ``prod`` assignment tag is the newest. Both
are judged on the same test rows: when the data or the split changed since the champion
was evaluated, the champion's model is fetched (DVC cache, else remote) and re-scored on
the current test rows. The comparison holds both metric sets, the deltas, the rule and
the decision; the DAG's branch decides from it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchserving.core.atomic import write_json
from batchserving.core.names import (
    ARTIFACT,
    DATA_PATH,
    EVALUATE_STAGE,
    METRICS_FILE,
    SERVING_DIR,
)
from batchserving.core.params import ParamsError, SelectionParams, TrainParams
from batchserving.registry.dvclock import evaluation_basis, model_hash
from batchserving.registry.git import RegistryError, run_label, show
from batchserving.registry.remote import fetch_model
from batchserving.registry.sync import sync
from batchserving.registry.versions import ModelVersion, latest_version, prod_assignments
from batchserving.registry.workspace import workspace_path
from batchserving.selection.rule import (
    KEEP,
    REDEPLOY,
    SelectionError,
    decide,
    metric_deltas,
    parse_metrics,
)
from batchserving.serving.deployment import DeploymentError, read_deployment


def rescore(repo: Path, version: ModelVersion) -> dict[str, Any]:
    """Score ``version``'s model on the workspace's current test rows."""
    import joblib

    from batchserving.training.iris import load_dataset, split_rows
    from batchserving.training.metrics import score_model

    params = TrainParams.load(repo / "params.yaml")
    _, test = split_rows(load_dataset(str(repo / DATA_PATH)), params.test_size, params.random_state)
    with tempfile.TemporaryDirectory(dir=repo / ".dvc" / "tmp") as tmp:
        model = joblib.load(fetch_model(repo, version, Path(tmp) / "model.joblib"))
    return score_model(model, test)


def deployed_version(repo: Path) -> str | None:
    """The version in ``output/serving`` if that deployment is complete and consistent."""
    try:
        record = read_deployment(repo / SERVING_DIR, attempts=1).record
    except DeploymentError:
        return None
    return f"{record.get('version')}@{record.get('commit')}"


def challenger_of(repo: Path, metric: str) -> tuple[ModelVersion, dict[str, Any]]:
    """The latest version and the workspace's metrics, checked to be that version's."""
    metrics_path = repo / METRICS_FILE
    text = metrics_path.read_text(encoding="utf-8") if metrics_path.exists() else None
    metrics = parse_metrics(text, str(metrics_path), metric)
    latest = latest_version(repo)
    if latest is None:
        raise SelectionError(
            f"no {ARTIFACT} version is registered; run the register step "
            "(`python -m batchserving.registry.register register`) first"
        )
    workspace_lock = (repo / "dvc.lock").read_text(encoding="utf-8")
    if model_hash(workspace_lock) != model_hash(show(repo, latest.commit, "dvc.lock")):
        raise SelectionError(
            f"the workspace model (dvc.lock) is not {ARTIFACT}@{latest.version}, the "
            "latest version; bring the pipeline up to date and register it first"
        )
    return latest, metrics


def champion_part(repo: Path, champion: ModelVersion, metric: str) -> dict[str, Any]:
    """The champion's side: its metrics on the current test rows (recorded or rescored)."""
    workspace_lock = (repo / "dvc.lock").read_text(encoding="utf-8")
    champion_lock = show(repo, champion.commit, "dvc.lock")
    same_rows = evaluation_basis(champion_lock) == evaluation_basis(workspace_lock)
    if same_rows:
        metrics = parse_metrics(
            show(repo, champion.commit, METRICS_FILE) or None,
            f"{METRICS_FILE} of {ARTIFACT}@{champion.version}",
            metric,
        )
    else:
        metrics = rescore(repo, champion)
    return {
        "version": champion.version,
        "commit": champion.commit,
        "metrics": metrics,
        "metrics_source": "recorded" if same_rows else "rescored on the current test rows",
        "prod_tag": champion.tag,
    }


def decision_for(
    challenger: ModelVersion,
    challenger_metrics: dict[str, Any],
    champion: dict[str, Any] | None,
    assignments: list[ModelVersion],
    params: SelectionParams,
) -> tuple[str, str]:
    """The decision and why: the rule, except for the champion itself and rolled-back versions."""
    if champion is not None and champion["version"] == challenger.version:
        return KEEP, f"challenger {challenger.version} is already the champion"
    if champion is not None and any(a.version == challenger.version for a in assignments):
        # A version that lost prod was rolled back on purpose; only a person re-promotes it.
        return KEEP, (
            f"challenger {challenger.version} was rolled back from prod; promote it by hand "
            f"with `make rollback VERSION={challenger.version}`"
        )
    metric = params.primary_metric
    return decide(
        challenger_metrics[metric],
        champion["metrics"][metric] if champion else None,
        params.min_improvement,
    )


def compare(repo: Path, params: SelectionParams, label: str) -> dict[str, Any]:
    """Build the comparison of the challenger with the champion (see the module docstring)."""
    metric = params.primary_metric
    challenger, challenger_metrics = challenger_of(repo, metric)
    assignments = prod_assignments(repo)
    champion = champion_part(repo, assignments[-1], metric) if assignments else None
    decision, reason = decision_for(challenger, challenger_metrics, champion, assignments, params)
    if decision == KEEP and champion is not None:
        deployed = deployed_version(repo)
        if deployed != f"{champion['version']}@{champion['commit']}":
            decision = REDEPLOY
            reason += (
                f"; {SERVING_DIR} holds {deployed or 'no valid deployment'}, "
                f"not prod {champion['version']}: redeploying it"
            )
    return {
        "artifact": ARTIFACT,
        "run": label,
        "compared_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rule": {
            "primary_metric": metric,
            "min_improvement": params.min_improvement,
            "statement": (
                f"promote iff there is no prod version, or challenger {metric} - champion "
                f"{metric} > {params.min_improvement}; a tie keeps the champion"
            ),
        },
        "challenger": {
            "version": challenger.version,
            "commit": challenger.commit,
            "metrics": challenger_metrics,
        },
        "champion": champion,
        "deltas": metric_deltas(challenger_metrics, champion["metrics"]) if champion else {},
        "decision": decision,
        "reason": reason,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="", help="also write the comparison to this file")
    args = parser.parse_args()
    repo = workspace_path()
    try:
        sync(repo, pull=["--with-deps", EVALUATE_STAGE])
        comparison = compare(repo, SelectionParams.load(repo / "params.yaml"), run_label())
    except (ParamsError, SelectionError, RegistryError) as exc:
        sys.exit(f"selection: {exc}; nothing was promoted")
    if args.output:
        write_json(args.output, comparison)
    champion = comparison["champion"]
    print(
        f"selection: challenger {comparison['challenger']['version']} vs champion "
        f"{champion['version'] if champion else 'none'}: {comparison['decision']} "
        f"({comparison['reason']})",
        flush=True,
    )
    # The last line: the task's XCom, which the branch, keep and promote tasks read.
    print(json.dumps(comparison, sort_keys=True, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
