"""Which model this worker serves: the registry's ``prod`` version, cached in ``output/serving``.

Inference resolves ``prod`` from the tags on the server (``MODEL_REPO_URL``; on one
machine the workspace is the registry), into a bare mirror of the tags that only
inference uses, so it never touches the workspace's own refs while a writer works
there. The model comes from the DVC cache, else the DVC remote, by the md5 that prod's
``dvc.lock`` pins, verified, and deployed atomically (``deployment.deploy_model``). A
worker that never saw a promotion thus serves the same version as the one that did.
When the server cannot be reached, the cached deployment is served and the log says so.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from batchserving.core.names import (
    ARTIFACT,
    METRICS_FILE,
    PIPELINE_LOCK,
    PROD_STAGE,
    SERVING_DIR,
    SERVING_REGISTRY,
)
from batchserving.registry.dvclock import model_hash
from batchserving.registry.git import RegistryError, git, show
from batchserving.registry.versions import ModelVersion, current_prod
from batchserving.registry.workspace import origin_url
from batchserving.serving.deployment import (
    DeploymentError,
    NothingDeployed,
    deploy_model,
    file_md5,
    read_deployment,
)


def version_metrics(git_dir: Path, version: ModelVersion) -> dict[str, Any]:
    """The metrics.json committed with ``version`` (empty if it has none)."""
    text = show(git_dir, version.commit, METRICS_FILE) or ""
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}


def deploy_version(git_dir: Path, serving_dir: Path, model_file: Path, prod: ModelVersion) -> None:
    """Install ``model_file`` as ``prod``'s deployment, its record read from ``git_dir``."""
    if prod.assigned_at is None:
        raise DeploymentError(f"{ARTIFACT}@{prod.version} is not assigned to {PROD_STAGE}")
    record = {
        "artifact": ARTIFACT,
        "version": prod.version,
        "commit": prod.commit,
        "metrics": version_metrics(git_dir, prod),
        # The prod tag's time: redeploying the same version writes the same record.
        "promoted_at": prod.assigned_at.isoformat().replace("+00:00", "Z"),
        "stage": PROD_STAGE,
    }
    deploy_model(serving_dir, model_file, record)


def mirror_tags(repo: Path) -> Path:
    """Fetch the registry's artifact tags into inference's mirror; return the mirror."""
    mirror = repo / SERVING_REGISTRY
    if not (mirror / "HEAD").exists():
        git(repo, "init", "--quiet", "--bare", str(mirror))
    source = origin_url() or str(repo)
    refspec = f"+refs/tags/{ARTIFACT}*:refs/tags/{ARTIFACT}*"
    git(mirror, "fetch", "--quiet", "--prune", "--no-write-fetch-head", source, refspec)
    return mirror


def fetch_object(repo: Path, md5: str, dest: Path) -> None:
    """Copy the DVC object ``md5`` to ``dest`` from the local cache, else the default remote."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        cached = Path(dvc_repo.cache.local.oid_to_path(md5))
        if cached.is_file():
            shutil.copyfile(cached, dest)
        else:
            odb = dvc_repo.cloud.get_remote_odb()
            odb.fs.get_file(odb.oid_to_path(md5), str(dest))
    if file_md5(dest) != md5:
        raise DeploymentError(f"the object {md5} fetched for {ARTIFACT} does not match its md5")


def cached_or_raise(serving_dir: Path, reason: str) -> None:
    """Keep serving the cached deployment when the registry is out of reach, or fail."""
    try:
        record = read_deployment(serving_dir, attempts=1).record
    except DeploymentError:
        raise DeploymentError(
            f"cannot resolve the prod model ({reason}) and nothing is cached in {serving_dir}; "
            "check MODEL_REPO_URL, the model_repo_git connection and the server"
        ) from None
    print(
        f"predict: the registry is out of reach ({reason}); serving the cached "
        f"{ARTIFACT} {record['version']}",
        flush=True,
    )


def refresh_serving(repo: Path) -> None:
    """Make ``output/serving`` hold the registry's current prod version (see the docstring)."""
    serving_dir = repo / SERVING_DIR
    try:
        mirror = mirror_tags(repo)
    except RegistryError as exc:
        cached_or_raise(serving_dir, str(exc))
        return
    prod = current_prod(mirror)
    if prod is None:
        raise NothingDeployed(
            f"no {ARTIFACT} version is in {PROD_STAGE} yet; run the model_selection DAG first"
        )
    try:
        record = read_deployment(serving_dir, attempts=1).record
        if (record.get("version"), record.get("commit")) == (prod.version, prod.commit):
            return
    except DeploymentError:
        pass
    md5 = model_hash(show(mirror, prod.commit, PIPELINE_LOCK))
    if md5 is None:
        raise DeploymentError(f"{ARTIFACT}@{prod.version}'s dvc.lock pins no model")
    serving_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=serving_dir, prefix=".fetch-") as tmp:
        model_file = Path(tmp) / "model.joblib"
        try:
            fetch_object(repo, md5, model_file)
        except DeploymentError:
            raise  # fetched, but not the model prod pins: never serve it
        except (OSError, RuntimeError) as exc:
            cached_or_raise(serving_dir, f"model {md5} not fetched: {type(exc).__name__}")
            return
        deploy_version(mirror, serving_dir, model_file, prod)
    print(f"predict: now serving {ARTIFACT} {prod.version} (prod), fetched by md5 {md5}")
