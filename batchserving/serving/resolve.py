"""Which model this worker serves: the registry's ``prod`` version, cached in ``output/serving``.

Inference resolves ``prod`` from the tags on the server (``MODEL_REPO_URL``; on one
machine the workspace is the registry), into a bare mirror of the tags that only
inference uses, so it never touches the workspace's own refs while a writer works
there. The model comes from the DVC cache, else the DVC remote, by the md5 that prod's
``dvc.lock`` pins, verified, and deployed atomically (``deployment.deploy_model``). A
worker that never saw a promotion thus serves the same version as the one that did.
The cache counts as current only if its record names prod's version, commit and pinned
md5 and its file has that md5; otherwise the model is fetched again. When the server
cannot be reached, or the fetched model fails its md5 check, the cached deployment is
served and the log says so.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from batchserving.core.names import (
    ARTIFACT,
    PIPELINE_LOCK,
    PROD_STAGE,
    SERVING_DIR,
    SERVING_REGISTRY,
)
from batchserving.registry.git import RegistryError, git, show
from batchserving.registry.integrity import mismatch, pinned_md5
from batchserving.registry.release import Release, prod_release
from batchserving.registry.remote import fetch_model
from batchserving.registry.workspace import origin_url
from batchserving.serving.deployment import (
    RECORD_FILE,
    DeploymentError,
    NothingDeployed,
    deploy_model,
    read_deployment,
    serves,
)


def deploy_release(serving_dir: Path, model_file: Path, release: Release) -> None:
    """Install ``model_file`` as ``release``'s deployment (checked against its pinned md5)."""
    try:
        record = release.deployment_record()
    except ValueError as exc:
        raise DeploymentError(str(exc)) from None
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


def serve_cached(serving_dir: Path, mirror: Path, reason: str) -> None:
    """Keep serving the cached deployment, if it is still its version's pinned model, or fail.

    Used when prod cannot be deployed now (the server is out of reach, or the fetched
    model failed its md5 check). The cache is checked against the md5 its own version
    pins wherever the tag mirror has that version's commit.
    """
    try:
        record = read_deployment(serving_dir, attempts=1).record
    except DeploymentError:
        raise DeploymentError(
            f"cannot deploy the prod model ({reason}) and nothing valid is cached in "
            f"{serving_dir}; check MODEL_REPO_URL, the model_repo_git connection and the server"
        ) from None
    version, commit = record["version"], record["commit"]
    if show(mirror, commit, PIPELINE_LOCK) is not None:
        expected = pinned_md5(mirror, version, commit)
        if record["model_md5"] != expected:
            raise mismatch(
                serving_dir / RECORD_FILE, f"{ARTIFACT}@{version}", expected, record["model_md5"]
            )
    print(
        f"predict: WARNING: {reason}; serving the cached deployment, "
        f"{ARTIFACT} {version} (md5 {record['model_md5']}), instead",
        file=sys.stderr,
        flush=True,
    )


def refresh_serving(repo: Path) -> None:
    """Make ``output/serving`` hold the registry's current prod version (see the docstring)."""
    serving_dir = repo / SERVING_DIR
    try:
        mirror = mirror_tags(repo)
    except RegistryError as exc:
        serve_cached(serving_dir, repo / SERVING_REGISTRY, f"the registry is out of reach ({exc})")
        return
    release = prod_release(mirror)
    if release is None:
        raise NothingDeployed(
            f"no {ARTIFACT} version is in {PROD_STAGE} yet; run the model_selection DAG first"
        )
    prod = release.version
    if serves(serving_dir, prod.version, prod.commit, release.model_md5):
        return
    serving_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=serving_dir, prefix=".fetch-") as tmp:
        try:
            model_file = fetch_model(repo, prod, Path(tmp) / "model.joblib", git_dir=mirror)
        except RegistryError as exc:  # ModelIntegrityError too: never served
            serve_cached(serving_dir, mirror, str(exc))
            return
        deploy_release(serving_dir, model_file, release)
    print(
        f"predict: now serving {ARTIFACT} {prod.version} (prod), verified by md5 "
        f"{release.model_md5}"
    )
