"""This worker's workspace of the model repo: where it is, and making it on first use.

``MODEL_REPO`` names the workspace. Unset, every local entry point (the make targets and
the DAGs alike) uses one default: ``.model-repo/`` inside the project, git-ignored, never
the user's checkout itself. A missing or empty workspace is cloned: from
``MODEL_REPO_URL`` (the shared repo on the git server) when it is set, else from the
project's checkout (the embedded default, which is never synced or pushed afterwards).
``python -m batchserving.registry.workspace`` makes it if needed and names it (the make
targets say so at start). ``DVC_REMOTE_URL`` becomes the workspace's default DVC remote
in its local config (``.dvc/config.local``), never in the committed ``.dvc/config``.

Neither URL, nor the remote's endpoint ``AWS_ENDPOINT_URL``, may carry credentials
(``batchserving.core.urls``): git would copy them into ``.git/config`` and its messages,
DVC into its config. They are checked whenever a workspace is made or used, before
anything is written; the secrets go in the Airflow connections ``model_repo_git`` and
``dvc_remote`` instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from batchserving import PROJECT_ROOT
from batchserving.core.names import PIPELINE
from batchserving.core.urls import UnsafeUrl, checked_url, redact_url
from batchserving.registry.git import RegistryError, run_tool

DEFAULT_WORKSPACE = PROJECT_ROOT / ".model-repo"
SHARED_REMOTE = "shared"
S3_TIMEOUTS = {"connect_timeout": "10", "read_timeout": "15"}
GIT_CREDENTIALS = (
    "Airflow connection 'model_repo_git' (an ssh key and known_hosts, or https login and "
    "token); by hand, in your ssh agent or a git credential helper"
)
REMOTE_CREDENTIALS = (
    "Airflow connection 'dvc_remote' (login = access key id, password = secret); by hand, "
    "in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or `dvc remote modify --local`"
)


class NotAModelRepo(RegistryError):
    """MODEL_REPO is not a git + DVC workspace of this project, and cannot be made one.

    A RegistryError, so every command that reports registry errors reports it in one line.
    """


def workspace_path(environ: Mapping[str, str] = os.environ) -> Path:
    """The workspace ``MODEL_REPO`` names, else the project's default one."""
    raw = environ.get("MODEL_REPO")
    return Path(raw).expanduser().absolute() if raw else DEFAULT_WORKSPACE


def _checked(environ: Mapping[str, str], variable: str, where_credentials_go: str) -> str | None:
    try:
        return checked_url(environ.get(variable), variable, where_credentials_go)
    except UnsafeUrl as exc:
        raise NotAModelRepo(str(exc)) from None


def origin_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """The shared model repo's git URL (``MODEL_REPO_URL``), or None on one machine.

    Raise NotAModelRepo when the URL carries credentials (or is no usable URL).
    """
    return _checked(environ, "MODEL_REPO_URL", GIT_CREDENTIALS)


def remote_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """The shared DVC remote's URL (``DVC_REMOTE_URL``), or None; checked as origin_url is."""
    return _checked(environ, "DVC_REMOTE_URL", REMOTE_CREDENTIALS)


def endpoint_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """The object store's endpoint (``AWS_ENDPOINT_URL``, from ``dvc_remote``), checked."""
    return _checked(environ, "AWS_ENDPOINT_URL", REMOTE_CREDENTIALS)


def validate(path: Path) -> Path:
    """``path`` if it is the top of a git repository holding this project's DVC pipeline."""
    top = run_tool(["git", "-C", str(path), "rev-parse", "--show-toplevel"], None, check=False)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != path.resolve():
        raise NotAModelRepo(
            f"MODEL_REPO={path} is not the top of a git repository; point MODEL_REPO at a "
            "clone of this project, or at an empty directory to clone into"
        )
    if not (path / ".dvc").is_dir() or not (path / PIPELINE).is_file():
        raise NotAModelRepo(
            f"MODEL_REPO={path} is not a DVC repository (no .dvc/ or dvc.yaml); "
            "point MODEL_REPO at a clone of this project"
        )
    return path


def configure_remote(path: Path, environ: Mapping[str, str] = os.environ) -> None:
    """Make ``DVC_REMOTE_URL`` (if set) the default remote, in the local config only."""
    url = remote_url(environ)
    if not url:
        return

    def dvc_remote(*args: str) -> None:
        run_tool(["dvc", "remote", *args], path, error=NotAModelRepo)

    dvc_remote("add", "--local", "--force", "--default", SHARED_REMOTE, url)
    # DVC re-hashes what it downloads: an object altered in the bucket fails the pull.
    dvc_remote("modify", "--local", SHARED_REMOTE, "verify", "true")
    endpoint = endpoint_url(environ)
    if endpoint:
        dvc_remote("modify", "--local", SHARED_REMOTE, "endpointurl", endpoint)
    if url.startswith("s3://"):
        # A hung object store fails each request's try after these (botocore waits 60 s
        # per read and retries; with s3fs's own retries a stopped server held a pull
        # for minutes): about a minute and a half in all (NETWORK_BOUNDS, git.py).
        for option, seconds in S3_TIMEOUTS.items():
            dvc_remote("modify", "--local", SHARED_REMOTE, option, seconds)


def clone_into_place(path: Path, source: str, environ: Mapping[str, str]) -> None:
    """Clone ``source`` beside ``path``, then rename the clone into place in one step.

    Several tasks may start on a worker whose workspace is still missing; each clones
    into its own temp dir, the first rename wins (a rename onto a missing or empty
    directory) and the others drop their copy. No one ever sees a half-made clone.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    clone = Path(tempfile.mkdtemp(prefix=f"{path.name}.clone-", dir=path.parent))
    try:
        # Only the server's branch and its tags: the data branches (data/<name>, a commit an
        # hour) are fetched one tip at a time by the steps that need them.
        clone_command = ["git", "clone", "--quiet", "--single-branch", source, str(clone)]
        run_tool(clone_command, None, env=environ, error=NotAModelRepo)
        try:
            clone.rename(path)
        except OSError as exc:
            if path.is_dir() and any(path.iterdir()):
                return  # another task's clone is in place: use that one
            raise NotAModelRepo(
                f"cannot put the workspace at {path} ({exc.strerror}); make MODEL_REPO a "
                "writable path that is missing or an empty directory"
            ) from exc
        print(f"workspace: cloned {path} from {redact_url(source)}", flush=True)
    finally:
        shutil.rmtree(clone, ignore_errors=True)


def ensure_workspace(environ: Mapping[str, str] = os.environ) -> Path:
    """The workspace, cloned first when missing or empty, validated, its remote configured.

    Both URLs are checked first, so a refused one leaves nothing written.
    """
    path = workspace_path(environ)
    origin = origin_url(environ)
    remote_url(environ)
    endpoint_url(environ)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        clone_into_place(path, origin or str(PROJECT_ROOT), environ)
    validate(path)
    configure_remote(path, environ)
    return path


def describe(path: Path, environ: Mapping[str, str] = os.environ) -> str:
    """One line naming the workspace and why it is the one (for every local entry point)."""
    why = "MODEL_REPO" if environ.get("MODEL_REPO") else "the default; set MODEL_REPO for another"
    return f"model repo: {path} ({why})"


def main() -> None:
    """``python -m batchserving.registry.workspace``: make the workspace if needed, name it."""
    import sys

    try:
        path = ensure_workspace()
    except NotAModelRepo as exc:
        sys.exit(f"workspace: {exc}")
    print(describe(path), flush=True)


if __name__ == "__main__":
    main()
