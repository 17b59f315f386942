"""Promotion, rollback and redeployment of the ``prod`` version of ``iris-model``.

    python -m stages.promote promote            # act on output/selection/comparison.json
    python -m stages.promote rollback v0.0.1    # assign prod to an earlier version, deploy it
    python -m stages.promote redeploy           # deploy the current prod version again

Run them under the repo lock (``python -m stages.locked python -m stages.promote ...``).

Order of a promotion: fetch the model (DVC cache, else remote) into a staging file, then
``gto assign iris-model --stage prod`` (the comparison JSON is the tag message), then the
atomic deployment into ``output/serving/``, then ``dvc push``. A model that cannot be
fetched stops the promotion before the tag. Killed after the tag, the next run sees prod
already on the challenger but not deployed, and deploys it: every step is idempotent.
(``MODEL_REPO_TEST_PAUSE_AFTER_TAG``, tests only, holds a promotion at that point so the
fault injection test can kill it there; never set it in production.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stages.params import ParamsError, load_section
from stages.registry import (
    ARTIFACT,
    GitIdentity,
    RegistryError,
    dvc_push,
    git,
    git_identity,
    run_label,
)
from stages.selection import (
    COMPARISON_PATH,
    METRICS_FILE,
    PROD_STAGE,
    PROMOTE,
    REDEPLOY,
    ModelVersion,
    SelectionError,
    current_prod,
    deployed_version,
    fetch_model,
    registered_version,
)
from stages.serving import SERVING_DIR, deploy_model

# Test-only hook: seconds to sleep between the prod tag and the deployment, so that
# tests/e2e/test_fault_injection.py can kill -9 a promotion exactly there (the window
# is ~0.1 s otherwise). Unset in production: no pause.
PAUSE_AFTER_TAG_ENV = "MODEL_REPO_TEST_PAUSE_AFTER_TAG"


def assign_prod(repo: Path, version: ModelVersion, message: str, identity: GitIdentity) -> None:
    """Create the GTO tag ``iris-model#prod#N`` on ``version``, the newest prod tag."""
    from gto.api import assign

    previous = current_prod(repo)
    if previous is not None and previous.assigned_at is not None:
        # Tag times have one-second resolution and `dvc artifacts get --stage` picks the
        # newest: make this tag strictly newer than the one it replaces.
        while int(time.time()) <= int(previous.assigned_at.timestamp()):
            time.sleep(0.1)
    os.environ.update(identity.env())  # GTO's annotated tags take the tagger from here
    assign(
        str(repo),
        ARTIFACT,
        PROD_STAGE,
        version=version.version,
        message=message,
        force=True,  # a version that was prod before (rollback) gets a new tag too
        author=identity.name,
        author_email=identity.email,
    )
    now = current_prod(repo)
    if now is None or now.version != version.version:
        raise SelectionError(
            f"assigned {PROD_STAGE} to {version.version} but GTO resolves "
            f"{now.version if now else 'nothing'}; check `gto show {ARTIFACT}`"
        )


def pause_after_tag() -> None:
    """Sleep ``$MODEL_REPO_TEST_PAUSE_AFTER_TAG`` seconds when it is set (tests only)."""
    seconds = os.environ.get(PAUSE_AFTER_TAG_ENV)
    if seconds:
        print(f"promote: tagged; pausing {seconds}s ({PAUSE_AFTER_TAG_ENV})", flush=True)
        time.sleep(float(seconds))


def version_metrics(repo: Path, version: ModelVersion) -> dict[str, Any]:
    """The metrics.json committed with ``version`` (empty if it has none)."""
    text = git(repo, "show", f"{version.commit}:{METRICS_FILE}", check=False)
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}


def deploy_prod(repo: Path, model_file: Path) -> ModelVersion:
    """Install ``model_file`` as the current prod version in ``output/serving``."""
    prod = current_prod(repo)
    if prod is None or prod.assigned_at is None:
        raise SelectionError(f"no {ARTIFACT} version is in {PROD_STAGE}; nothing to deploy")
    record = {
        "artifact": ARTIFACT,
        "version": prod.version,
        "commit": prod.commit,
        "metrics": version_metrics(repo, prod),
        # The prod tag's time: redeploying the same version writes the same record.
        "promoted_at": prod.assigned_at.isoformat().replace("+00:00", "Z"),
        "stage": PROD_STAGE,
    }
    deploy_model(repo / SERVING_DIR, model_file, record)
    print(f"promote: deployed {ARTIFACT}@{prod.version} into {SERVING_DIR}", flush=True)
    return prod


@contextlib.contextmanager
def fetched_model(repo: Path, version: ModelVersion) -> Generator[Path, None, None]:
    """``version``'s model fetched (DVC cache, else remote) into a staging folder.

    One fixed folder, emptied first and removed afterwards: a promotion killed mid-way
    leaves its copy behind, and the next one (under the same repo lock) clears it.
    """
    staging = repo / ".dvc" / "tmp" / "promote-staging"
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


def promote(repo: Path, comparison: dict[str, Any], identity: GitIdentity) -> str:
    """Carry out a ``promote`` or ``redeploy`` decision; return the one-line summary."""
    decision = comparison.get("decision")
    if decision not in (PROMOTE, REDEPLOY):
        raise SelectionError(f"the comparison decided {decision!r}; there is nothing to promote")
    champion = comparison["champion"]
    target = comparison["challenger"] if decision == PROMOTE else champion
    version = ModelVersion(target["version"], target["commit"])
    prod = current_prod(repo)
    expected = champion["version"] if champion else None
    if decision == PROMOTE and prod is not None and prod.version == version.version:
        print(f"promote: {PROD_STAGE} already on {version.version} (a resumed run)", flush=True)
    elif (prod.version if prod else None) != expected:
        raise SelectionError(
            f"{PROD_STAGE} moved to {prod.version if prod else 'nothing'} since the comparison "
            f"(champion {expected}); run model_selection again"
        )

    if deployed_version(repo) == f"{version.version}@{version.commit}" and (
        prod is not None and prod.version == version.version
    ):
        print(f"promote: {version.version} is already deployed", flush=True)
    else:
        with fetched_model(repo, version) as model_file:
            if prod is None or prod.version != version.version:
                message = json.dumps(comparison, indent=2, sort_keys=True)
                assign_prod(repo, version, message, identity)
                pause_after_tag()
            deploy_prod(repo, model_file)
    dvc_push(repo)
    if decision == REDEPLOY:
        return (
            f":arrows_counterclockwise: model_selection: {ARTIFACT} {version.version} (prod) "
            f"redeployed into {SERVING_DIR}: {comparison['reason']}"
        )
    return (
        f":rocket: model_selection: promoted {ARTIFACT} {version.version} to {PROD_STAGE}: "
        f"{_metric_line(comparison)}"
    )


def rollback(repo: Path, version_name: str, identity: GitIdentity, label: str) -> str:
    """Assign prod to ``version_name`` (a new prod tag, like any promotion) and deploy it."""
    version = registered_version(repo, version_name)
    prod = current_prod(repo)
    with fetched_model(repo, version) as model_file:
        if prod is not None and prod.version == version.version:
            print(f"promote: {version.version} is already {PROD_STAGE}; redeploying", flush=True)
        else:
            record = {
                "action": "rollback",
                "from": prod.version if prod else None,
                "to": version.version,
                "by": label,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            assign_prod(repo, version, json.dumps(record, indent=2, sort_keys=True), identity)
        deploy_prod(repo, model_file)
    was = prod.version if prod else "none"
    return f"rollback: {ARTIFACT} {PROD_STAGE} is {version.version} (was {was})"


def redeploy(repo: Path) -> str:
    """Deploy the current prod version from the registry (DVC cache, else remote)."""
    prod = current_prod(repo)
    if prod is None:
        raise SelectionError(
            f"no {ARTIFACT} version is in {PROD_STAGE}; run the model_selection DAG first"
        )
    with fetched_model(repo, prod) as model_file:
        deploy_prod(repo, model_file)
    return f"redeploy: {ARTIFACT} {prod.version} ({PROD_STAGE}) deployed into {SERVING_DIR}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    promote_cmd = sub.add_parser("promote", help="act on the comparison of model_selection")
    promote_cmd.add_argument("--comparison", default=COMPARISON_PATH)
    rollback_cmd = sub.add_parser("rollback", help="assign prod to an earlier version")
    rollback_cmd.add_argument("version", help="a registered version, e.g. v0.0.1")
    sub.add_parser("redeploy", help="deploy the current prod version again")
    args = parser.parse_args()
    repo = Path.cwd()
    try:
        if args.action == "redeploy":
            summary = redeploy(repo)
        else:
            identity = git_identity(load_section("registry"))
            if args.action == "rollback":
                summary = rollback(repo, args.version, identity, run_label())
            else:
                path = repo / args.comparison
                try:
                    comparison = json.loads(path.read_text(encoding="utf-8"))
                except (FileNotFoundError, json.JSONDecodeError) as exc:
                    raise SelectionError(
                        f"{path} is missing or unreadable ({exc}); run the compare step first"
                    ) from None
                summary = promote(repo, comparison, identity)
    except (ParamsError, SelectionError, RegistryError) as exc:
        sys.exit(f"promote: {exc}")
    # The last line of output: the DAG's promote task sends it to Slack.
    print(summary, flush=True)


if __name__ == "__main__":
    main()
