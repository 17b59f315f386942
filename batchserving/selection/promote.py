"""Promotion, rollback and redeployment of the ``prod`` version of ``iris-model``.

    python -m batchserving.selection.promote promote --comparison-json JSON [--approval-json JSON]
    python -m batchserving.selection.promote rollback v0.0.1    # assign prod to an earlier version
    python -m batchserving.selection.promote redeploy           # deploy the current prod again

Each runs under the repo lock (``batchserving.registry.lock``).

Order of a promotion: fetch the model (DVC cache, else remote) into a staging file, then
``gto assign iris-model --stage prod`` (the comparison JSON is the tag message), then the
atomic deployment into this worker's ``output/serving/``, then publishing (``dvc push``,
``git push`` of the tag: ``batchserving.registry.sync``). A model that cannot be
fetched stops the promotion before the tag. Killed after the tag, the next run sees prod
already on the challenger but not deployed, and deploys it: every step is idempotent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchserving.core.names import ARTIFACT, PARAMS_FILE, PROD_STAGE, SERVING_DIR, STAGING_DIR
from batchserving.core.params import ParamsError, RegistryParams
from batchserving.core.results import emit
from batchserving.registry.git import RegistryError, run_label
from batchserving.registry.lock import locked_workspace
from batchserving.registry.release import prod_release
from batchserving.registry.remote import fetch_model
from batchserving.registry.sync import sync, synced
from batchserving.registry.versions import (
    ModelVersion,
    assign_prod,
    current_prod,
    registered_version,
)
from batchserving.selection.rule import (
    PROMOTE,
    REDEPLOY,
    SelectionError,
    approval_line,
    evidence_line,
    read_approval,
    read_comparison,
)
from batchserving.serving.deployment import serves
from batchserving.serving.resolve import deploy_release


@contextlib.contextmanager
def fetched_model(repo: Path, version: ModelVersion) -> Generator[Path, None, None]:
    """``version``'s model fetched (DVC cache, else remote) into a staging folder.

    One fixed folder, emptied first and removed afterwards: a promotion killed mid-way
    leaves its copy behind, and the next one (under the same repo lock) clears it.
    """
    staging = repo / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield fetch_model(repo, version, staging / "model.joblib")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _metric_line(comparison: dict[str, Any]) -> str:
    metric = comparison["rule"]["primary_metric"]
    new = comparison["challenger"]["metrics"][metric]
    champion = comparison["champion"]
    if champion is None:
        return f"{metric} none → {new} (first prod version)"
    old = champion["metrics"][metric]
    return f"{metric} {old} → {new} (delta {comparison['deltas'].get(metric, new - old):+.6f})"


def check_prod_unmoved(
    decision: str, version: ModelVersion, prod: ModelVersion | None, expected: str | None
) -> None:
    """Refuse to act when prod moved since the comparison (a resumed promotion is fine)."""
    if decision == PROMOTE and prod is not None and prod.version == version.version:
        print(f"promote: {PROD_STAGE} already on {version.version} (a resumed run)", flush=True)
    elif (prod.version if prod else None) != expected:
        raise SelectionError(
            f"{PROD_STAGE} moved to {prod.version if prod else 'nothing'} since the comparison "
            f"(champion {expected}); run model_selection again"
        )


def promote(
    repo: Path,
    comparison: dict[str, Any],
    identity: RegistryParams,
    approval: dict[str, Any] | None = None,
) -> str:
    """Tag a ``promote`` decision's version as prod (``redeploy``: no tag); return the summary.

    ``approval`` is the approval step's decision record when a person was asked: it
    must say approved (and must exist when the rule requires approval), and it goes
    into the tag message beside the comparison. The
    deployment into this worker's serving cache follows once the tag is published
    (``deploy_current_prod``), so a push the server rejects leaves the deployment as it was.
    """
    decision = comparison.get("decision")
    if decision not in (PROMOTE, REDEPLOY):
        raise SelectionError(f"the comparison decided {decision!r}; there is nothing to promote")
    if approval is not None and not approval["approved"]:
        raise SelectionError("the promotion was not approved; nothing is promoted")
    required = comparison["rule"].get("approval") == "required"
    if decision == PROMOTE and approval is None and required:
        raise SelectionError(
            "selection.approval is required and no one approved this promotion; approve it "
            "at model_selection's approve_promotion task (nothing is promoted)"
        )
    if approval is not None:
        comparison = {**comparison, "approval": approval}
    champion = comparison["champion"]
    target = comparison["challenger"] if decision == PROMOTE else champion
    version = ModelVersion(target["version"], target["commit"])
    prod = current_prod(repo)
    check_prod_unmoved(decision, version, prod, champion["version"] if champion else None)
    if prod is None or prod.version != version.version:
        # Fetch first: a model no worker could fetch is never assigned to prod.
        with fetched_model(repo, version):
            message = json.dumps(comparison, indent=2, sort_keys=True)
            assign_prod(repo, version, message, identity, prod)
    if decision == REDEPLOY:
        return (
            f":arrows_counterclockwise: model_selection: {ARTIFACT} {version.version} (prod) "
            f"redeployed into {SERVING_DIR}: {comparison['reason']}"
        )
    return (
        f":rocket: model_selection: promoted {ARTIFACT} {version.version} to {PROD_STAGE}: "
        f"{_metric_line(comparison)}; {evidence_line(comparison.get('evidence'))}"
        f"{approval_line(approval)}"
    )


def rollback(repo: Path, version_name: str, identity: RegistryParams, label: str) -> str:
    """Assign prod to ``version_name`` (a new prod tag, like any promotion)."""
    version = registered_version(repo, version_name)
    prod = current_prod(repo)
    if prod is not None and prod.version == version.version:
        print(f"promote: {version.version} is already {PROD_STAGE}", flush=True)
    else:
        record = {
            "action": "rollback",
            "from": prod.version if prod else None,
            "to": version.version,
            "by": label,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with fetched_model(repo, version):
            assign_prod(repo, version, json.dumps(record, indent=2, sort_keys=True), identity, prod)
    was = prod.version if prod else "none"
    return f"rollback: {ARTIFACT} {PROD_STAGE} is {version.version} (was {was})"


def deploy_current_prod(repo: Path) -> str:
    """Deploy the current prod version into ``output/serving`` unless it is there already."""
    release = prod_release(repo)
    if release is None:
        raise SelectionError(
            f"no {ARTIFACT} version is in {PROD_STAGE}; run the model_selection DAG first"
        )
    prod = release.version
    if serves(repo / SERVING_DIR, prod.version, prod.commit, release.model_md5):
        return f"{ARTIFACT} {prod.version} ({PROD_STAGE}) is already deployed in {SERVING_DIR}"
    with fetched_model(repo, prod) as model_file:
        deploy_release(repo / SERVING_DIR, model_file, release)
    print(f"promote: deployed {ARTIFACT}@{prod.version} into {SERVING_DIR}", flush=True)
    return f"{ARTIFACT} {prod.version} ({PROD_STAGE}) deployed into {SERVING_DIR}"


def run(args: argparse.Namespace, repo: Path) -> str:
    """Carry out the action named on the command line; return its summary."""
    if args.action == "redeploy":
        sync(repo, pull=[])
        return f"redeploy: {deploy_current_prod(repo)}"
    identity = RegistryParams.load(repo / PARAMS_FILE)
    if args.action == "rollback":
        summary = synced(lambda: rollback(repo, args.version, identity, run_label()), [], repo)
    else:
        comparison = read_comparison(args.comparison_json)
        approval = read_approval(args.approval_json)
        summary = synced(lambda: promote(repo, comparison, identity, approval), [], repo)
    print(f"promote: {deploy_current_prod(repo)}", flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    promote_cmd = sub.add_parser("promote", help="act on the comparison of model_selection")
    promote_cmd.add_argument("--comparison-json", required=True, help="the compare step's JSON")
    promote_cmd.add_argument(
        "--approval-json", default=None, help="the approval step's decision (null: not asked)"
    )
    rollback_cmd = sub.add_parser("rollback", help="assign prod to an earlier version")
    rollback_cmd.add_argument("version", help="a registered version, e.g. v0.0.1")
    sub.add_parser("redeploy", help="deploy the current prod version again")
    args = parser.parse_args()
    try:
        with locked_workspace() as repo:
            summary = run(args, repo)
    except (ParamsError, SelectionError, RegistryError) as exc:
        sys.exit(f"promote: {exc}")
    print(summary, flush=True)
    # The task's XCom: the DAG's promote task sends the message to Slack.
    emit({"action": args.action, "message": summary})


if __name__ == "__main__":
    main()
