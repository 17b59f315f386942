"""The DVC remote: push the workspace's outputs, fetch a version's files by their pinned hash."""

from __future__ import annotations

import shutil
from pathlib import Path

from batchserving.core.names import ARTIFACT
from batchserving.core.urls import redact_url
from batchserving.registry.git import RegistryError, check_result, run_tool
from batchserving.registry.integrity import ModelIntegrityError, pinned_md5, verify_model
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
    result = run_tool(["dvc", "push"], repo, check=False)
    if result.returncode != 0:  # only then is the remote's description worth reading
        advice = "check the remote with `dvc remote list` and its credentials"
        check_result(result, f"dvc push to {remote_description(repo)}", advice=advice)
    print("registry: dvc push done", flush=True)


def in_remote(repo: Path, md5: str) -> bool:
    """Whether the default DVC remote holds the object with content hash ``md5``."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        return dvc_repo.cloud.get_remote_odb().exists(md5)


def fetch_object(repo: Path, md5: str, dest: Path, what: str) -> Path:
    """Copy the object ``md5`` to ``dest`` from the DVC cache, else the default remote, verified.

    A copy whose md5 is not ``md5`` is deleted and raises ``ModelIntegrityError``: nothing
    downstream ever reads it. ``what`` names the object in errors.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(repo)) as dvc_repo:
            cached = Path(dvc_repo.cache.local.oid_to_path(md5))
            if cached.is_file():
                shutil.copyfile(cached, dest)
            else:
                odb = dvc_repo.cloud.get_remote_odb()
                odb.fs.get_file(odb.oid_to_path(md5), str(dest))
    except (DvcException, OSError) as exc:
        raise RegistryError(
            f"{what} (md5 {md5}) is in neither the DVC cache nor the remote "
            f"{remote_description(repo)} ({type(exc).__name__}). Push it from a machine that "
            "has it (`dvc push`), or choose another version"
        ) from None
    try:
        return verify_model(dest, what, md5)
    except ModelIntegrityError:
        dest.unlink(missing_ok=True)
        raise


def fetch_model(repo: Path, version: ModelVersion, dest: Path, git_dir: Path | None = None) -> Path:
    """Copy ``version``'s model to ``dest`` from the DVC cache, else the default remote, verified.

    The object is looked up by the md5 that the version's ``dvc.lock`` pins (read from
    ``git_dir``, by default the workspace) and checked against it after the copy: a copy
    that does not match is deleted and raises ``ModelIntegrityError``, so nothing
    downstream (an assignment, a deployment, an unpickling) ever sees it.
    """
    md5 = pinned_md5(git_dir or repo, version.version, version.commit)
    return fetch_object(repo, md5, dest, f"the model of {ARTIFACT}@{version.version}")
