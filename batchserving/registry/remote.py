"""The DVC remote: push the workspace's outputs, fetch a version's model by its hash."""

from __future__ import annotations

import subprocess
from pathlib import Path

from batchserving.core.names import ARTIFACT, PIPELINE_LOCK
from batchserving.core.urls import redact_url
from batchserving.registry.dvclock import model_hash
from batchserving.registry.git import RegistryError, last_lines, show
from batchserving.registry.versions import ModelVersion


def remote_description(repo: Path) -> str:
    """The default DVC remote as ``'name' (url)``, for error messages (no credentials)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        name = dvc_repo.config["core"].get("remote")
        url = dvc_repo.config["remote"].get(name, {}).get("url") if name else None
    if not name:
        return "(no default remote configured)"
    # Never echo credentials a URL may carry (scheme://user:secret@host).
    return f"'{name}' ({redact_url(str(url))})"


def dvc_push(repo: Path) -> None:
    """Send the workspace's DVC outputs to the default remote; errors say why."""
    result = subprocess.run(["dvc", "push"], cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        reason = last_lines(result.stderr.strip() or result.stdout, 5)
        raise RegistryError(
            f"dvc push to {remote_description(repo)} failed: {reason}; "
            "check the remote with `dvc remote list` and its credentials"
        )
    print("registry: dvc push done", flush=True)


def in_remote(repo: Path, md5: str) -> bool:
    """Whether the default DVC remote holds the object with content hash ``md5``."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        return dvc_repo.cloud.get_remote_odb().exists(md5)


def fetch_model(repo: Path, version: ModelVersion, dest: Path) -> Path:
    """Download ``version``'s model to ``dest`` from the DVC cache, else the default remote.

    The same lookup as ``dvc artifacts get . iris-model --version vX.Y.Z``.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(repo)) as dvc_repo:
            dvc_repo.artifacts.download(
                ARTIFACT, version=version.version, out=str(dest), force=True
            )
    except (DvcException, FileNotFoundError) as exc:
        md5 = model_hash(show(repo, version.commit, PIPELINE_LOCK))
        raise RegistryError(
            f"the model of {ARTIFACT}@{version.version} (md5 {md5}) is in neither "
            f"the DVC cache nor the remote {remote_description(repo)}: {exc}. Push it from a "
            "machine that has it (`dvc push`), or choose another version"
        ) from None
    return dest
