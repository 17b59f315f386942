"""Champion/challenger comparison of ``model_selection``: the latest version against ``prod``.

    python -m batchserving.selection.compare [--output comparison.json]

Run after the pipeline is up to date and registered. Under the repo lock
(``batchserving.registry.lock``) it syncs the workspace with the server first and changes
nothing there. The comparison is its result (``batchserving.core.results``): the task's
XCom, so the next steps can run on any worker.

Challenger: the latest registered ``iris-model`` version; its metrics are the workspace's
``metrics.json`` and its model the workspace's model file. Champion: the version whose
``prod`` assignment tag is the newest; its model is fetched (DVC cache, else remote).
Both models predict the current test rows, so the champion's metrics and the per-row
outcomes are on the same rows as the challenger's: the paired evidence (McNemar's exact
test on the discordant rows, a paired bootstrap interval of the delta;
``batchserving.selection.evidence``) comes from them. The comparison holds both
metric sets, the deltas, the evidence, the rule and the decision; the DAG's branch
decides from it alone, and a promotion's ``prod`` tag carries it as its message.
"""

from __future__ import annotations

import argparse
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
    MODEL_PATH,
    PARAMS_FILE,
    PIPELINE_LOCK,
    SERVING_DIR,
)
from batchserving.core.params import ParamsError, SelectionParams, TrainParams
from batchserving.core.results import emit
from batchserving.registry.dvclock import model_hash
from batchserving.registry.git import RegistryError, run_label, show
from batchserving.registry.integrity import load_verified, pinned_md5
from batchserving.registry.lock import locked_workspace
from batchserving.registry.remote import fetch_model
from batchserving.registry.sync import sync
from batchserving.registry.versions import ModelVersion, latest_version, prod_assignments
from batchserving.selection.evidence import Evidence, gather
from batchserving.selection.rule import (
    KEEP,
    REDEPLOY,
    SelectionError,
    decide,
    metric_deltas,
    parse_metrics,
)
from batchserving.serving.deployment import DeploymentError, read_deployment, serves


def test_rows(repo: Path) -> Any:
    """The workspace's current test rows (the split of its params.yaml)."""
    from batchserving.training.iris import load_dataset, split_rows

    params = TrainParams.load(repo / PARAMS_FILE)
    _, test = split_rows(load_dataset(str(repo / DATA_PATH)), params.test_size, params.random_state)
    return test


def load_models(repo: Path, champion: ModelVersion, challenger: ModelVersion) -> tuple[Any, Any]:
    """The champion's model (fetched from the registry) and the workspace's challenger model.

    Each is unpickled only after its bytes match the md5 its version's dvc.lock pins.
    """
    challenger_path = repo / MODEL_PATH
    if not challenger_path.is_file():
        raise SelectionError(
            f"{challenger_path} is missing; run `dvc repro evaluate` (or `dvc pull`) to restore it"
        )
    challenger_md5 = pinned_md5(repo, challenger.version, challenger.commit)
    with tempfile.TemporaryDirectory(dir=repo / ".dvc" / "tmp") as tmp:
        champion_file = fetch_model(repo, champion, Path(tmp) / "model.joblib")
        champion_md5 = pinned_md5(repo, champion.version, champion.commit)
        champion_model = load_verified(
            champion_file, f"{ARTIFACT}@{champion.version}", champion_md5
        )
    what = f"{ARTIFACT}@{challenger.version} (the workspace model)"
    return champion_model, load_verified(challenger_path, what, challenger_md5)


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
    workspace_lock = (repo / PIPELINE_LOCK).read_text(encoding="utf-8")
    if model_hash(workspace_lock) != model_hash(show(repo, latest.commit, PIPELINE_LOCK)):
        raise SelectionError(
            f"the workspace model (dvc.lock) is not {ARTIFACT}@{latest.version}, the "
            "latest version; bring the pipeline up to date and register it first"
        )
    return latest, metrics


def champion_part(
    repo: Path,
    champion: ModelVersion,
    challenger: tuple[ModelVersion, dict[str, Any]],
    params: SelectionParams,
) -> tuple[dict[str, Any], Evidence]:
    """The champion's side and the paired evidence: both models on the current test rows.

    Each model predicts the rows once; its scores and the paired evidence use those.
    """
    from batchserving.training.iris import FEATURES, TARGET
    from batchserving.training.metrics import score_predictions

    challenger_version, challenger_metrics = challenger
    test = test_rows(repo)
    champion_model, challenger_model = load_models(repo, champion, challenger_version)
    truth = test[TARGET].to_numpy()
    by_champion = champion_model.predict(test[FEATURES])
    by_challenger = challenger_model.predict(test[FEATURES])
    metric = params.primary_metric
    challenger_score = score_predictions(truth, by_challenger)[metric]
    if challenger_score != challenger_metrics[metric]:
        raise SelectionError(
            f"{METRICS_FILE} says {metric} {challenger_metrics[metric]} but the workspace model "
            f"scores {challenger_score} on the test rows; run `dvc repro evaluate` to rewrite it"
        )
    evidence = gather(params.test, params.alpha, metric, truth, by_champion, by_challenger)
    part = {
        "version": champion.version,
        "commit": champion.commit,
        "metrics": score_predictions(truth, by_champion),
        "metrics_source": "scored on the current test rows",
        "prod_tag": champion.tag,
    }
    return part, evidence


def decision_for(
    challenger: ModelVersion,
    challenger_metrics: dict[str, Any],
    champion: dict[str, Any] | None,
    evidence: Evidence | None,
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
        params,
        evidence,
    )


def rule_record(params: SelectionParams) -> dict[str, Any]:
    """The rule's parameters and statement, as the comparison records them."""
    metric = params.primary_metric
    significant = {
        "mcnemar": f"McNemar's exact p-value < {params.alpha}",
        "bootstrap": (
            f"the lower bound of the {1 - params.alpha:.0%} paired bootstrap interval of the "
            f"delta > {params.min_improvement}"
        ),
        "none": "the point estimates alone (no test)",
    }[params.test]
    return {
        "primary_metric": metric,
        "min_improvement": params.min_improvement,
        "test": params.test,
        "alpha": params.alpha,
        "min_score": params.min_score,
        # Read by the DAG's branch: with "required" a promote verdict waits for a person.
        "approval": params.approval,
        "approval_timeout_minutes": params.approval_timeout_minutes,
        "statement": (
            f"promote iff challenger {metric} >= min_score {params.min_score} and (there is "
            f"no prod version, or challenger {metric} - champion {metric} > "
            f"{params.min_improvement} and {significant}); a tie or a non-significant gain "
            "keeps the champion"
        ),
    }


def compare(repo: Path, params: SelectionParams, label: str) -> dict[str, Any]:
    """Build the comparison of the challenger with the champion (see the module docstring)."""
    metric = params.primary_metric
    challenger, challenger_metrics = challenger_of(repo, metric)
    assignments = prod_assignments(repo)
    champion, evidence = (
        champion_part(repo, assignments[-1], (challenger, challenger_metrics), params)
        if assignments
        else (None, None)
    )
    decision, reason = decision_for(
        challenger, challenger_metrics, champion, evidence, assignments, params
    )
    if decision == KEEP and champion is not None:
        deployed = deployed_version(repo)
        champion_md5 = pinned_md5(repo, champion["version"], champion["commit"])
        if not serves(repo / SERVING_DIR, champion["version"], champion["commit"], champion_md5):
            decision = REDEPLOY
            reason += (
                f"; {SERVING_DIR} holds {deployed or 'no valid deployment'}, "
                f"not prod {champion['version']}: redeploying it"
            )
    return {
        "artifact": ARTIFACT,
        "run": label,
        "compared_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rule": rule_record(params),
        "challenger": {
            "version": challenger.version,
            "commit": challenger.commit,
            "metrics": challenger_metrics,
        },
        "champion": champion,
        "deltas": metric_deltas(challenger_metrics, champion["metrics"]) if champion else {},
        "evidence": evidence.as_dict() if evidence else None,
        "decision": decision,
        "reason": reason,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output", default="", help="also write the comparison here (relative: in the repo)"
    )
    args = parser.parse_args()
    try:
        with locked_workspace() as repo:
            sync(repo, pull=["--with-deps", EVALUATE_STAGE])
            comparison = compare(repo, SelectionParams.load(repo / PARAMS_FILE), run_label())
            if args.output:
                write_json(repo / args.output, comparison)
    except (ParamsError, SelectionError, RegistryError) as exc:
        sys.exit(f"selection: {exc}; nothing was promoted")
    champion = comparison["champion"]
    print(
        f"selection: challenger {comparison['challenger']['version']} vs champion "
        f"{champion['version'] if champion else 'none'}: {comparison['decision']} "
        f"({comparison['reason']})",
        flush=True,
    )
    emit(comparison)  # the task's XCom: the branch, keep and promote tasks read it


if __name__ == "__main__":
    main()
