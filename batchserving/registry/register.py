"""Register model versions: the register step's task command, and the pipeline commit.

    python -m batchserving.registry.register [--commit SHA | --published RESULT]

Under the repo lock (``batchserving.registry.lock``) it syncs with the server, tags the
commit (default: the server's HEAD) as the next version if its model has none, and
pushes the tag (``batchserving.registry.sync``).

A version is a commit tagged ``iris-model@vX.Y.Z`` by GTO; its ``dvc.lock`` pins the
model's content hash. Registration is keyed on that hash, not on whether this run
changed files: a committed state whose model has no version yet (a fresh clone whose
tags were never pushed) gets one, and an unchanged model never gets a second.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from batchserving.core.names import (
    ARTIFACT,
    EVALUATE_STAGE,
    MODEL_PATH,
    PARAMS_FILE,
    PIPELINE_LOCK,
)
from batchserving.core.params import ParamsError, RegistryParams
from batchserving.core.results import ResultError, emit, read_result
from batchserving.registry.dvclock import model_hash, pinned_files
from batchserving.registry.git import RegistryError, git, run_label, show
from batchserving.registry.lock import locked_workspace
from batchserving.registry.remote import in_remote, remote_description
from batchserving.registry.sync import synced
from batchserving.registry.versions import latest_version, register_version, version_at


def changed_files(repo: Path, paths: set[str]) -> list[str]:
    """Of ``paths``, those git sees as modified or new (ignored files are never listed)."""
    existing = sorted(p for p in paths if (repo / p).exists() or git(repo, "ls-files", "--", p))
    if not existing:
        return []
    status = git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *existing)
    return sorted(entry[3:] for entry in status.split("\0") if entry)


def commit_pipeline_state(repo: Path, label: str) -> str | None:
    """Commit what the model pipeline changed; return the new commit, or None if nothing did.

    Its lock file counts, with the files it pins; a data pipeline's lock file never does
    (``batchserving.registry.dataref`` records those). The identity comes from the
    workspace's params.yaml (``registry``), read only when there is something to commit.
    """
    lock = repo / PIPELINE_LOCK
    if not lock.exists():
        raise RegistryError(f"no {PIPELINE_LOCK} in {repo}: run `dvc repro` first")
    files = changed_files(repo, pinned_files(lock.read_text(encoding="utf-8")))
    if not files:
        print("registry: pipeline state unchanged; nothing to commit", flush=True)
        return None
    identity = RegistryParams.load(repo / PARAMS_FILE)
    git(repo, "add", "--", *files)
    message = f"{label}: update pipeline state\n\nChanged: {', '.join(files)}\n"
    git(repo, "commit", "--no-verify", "-q", "-m", message, "--", *files, env=identity.git_env())
    commit = git(repo, "rev-parse", "HEAD").strip()
    print(f"registry: committed {commit[:12]} ({', '.join(files)})", flush=True)
    return commit


def register_commit(repo: Path, commit: str, identity: RegistryParams, label: str) -> dict:
    """Tag ``commit`` as a new version if its model has none; return the register result.

    The model must already be in the DVC remote (the step that trained it pushed it):
    a version is never tagged whose model another worker could not fetch. The result
    names the version the commit's model has (``new``: tagged by this run) and says why.
    """
    md5 = model_hash(show(repo, commit, PIPELINE_LOCK))
    if md5 is None:
        raise RegistryError(
            f"commit {commit[:12]}'s dvc.lock pins no {MODEL_PATH}; "
            f"run `dvc repro {EVALUATE_STAGE}`"
        )
    if not in_remote(repo, md5):
        raise RegistryError(
            f"the model of {commit[:12]} (md5 {md5}) is not in the DVC remote "
            f"{remote_description(repo)}; run the training step again to push it"
        )
    result = {"artifact": ARTIFACT, "model_md5": md5, "new": False}
    registered = version_at(repo, commit)
    latest = latest_version(repo)
    if registered is not None:
        message = f"{commit[:12]} is already {ARTIFACT}@{registered.version}; no new version"
        return {**result, "version": registered.version, "commit": commit, "message": message}
    if latest is not None and model_hash(show(repo, latest.commit, PIPELINE_LOCK)) == md5:
        message = f"model unchanged since {ARTIFACT}@{latest.version} (md5 {md5}); no new version"
        return {**result, "version": latest.version, "commit": latest.commit, "message": message}
    version = register_version(repo, commit, f"{label}: register {ARTIFACT}", identity)
    message = f"registered {ARTIFACT}@{version.version} at {version.commit[:12]} (md5 {md5})"
    return {
        **result,
        "version": version.version,
        "commit": version.commit,
        "new": True,
        "message": message,
    }


def commit_to_register(args: argparse.Namespace) -> str:
    """The revision to register: ``--commit``, the publish step's result's, else HEAD."""
    if args.published:
        return str(read_result(args.published, "the publish step").get("commit") or "HEAD")
    return args.commit or "HEAD"


def register(repo: Path, args: argparse.Namespace) -> dict:
    """Sync, tag the commit the command line names if its model has no version, publish."""
    identity = RegistryParams.load(repo / PARAMS_FILE)

    def step() -> dict:
        revision = commit_to_register(args)
        commit = git(repo, "rev-parse", "--verify", f"{revision}^{{commit}}")
        return register_commit(repo, commit.strip(), identity, run_label())

    return synced(step, [], repo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--commit", default="", help="the commit to register (default: the server's HEAD)"
    )
    parser.add_argument("--published", default="", help="the publish step's result: its commit")
    args = parser.parse_args()
    try:
        with locked_workspace() as repo:
            result = register(repo, args)
    except (ParamsError, RegistryError, ResultError) as exc:
        sys.exit(f"registry: {exc}")
    print(f"registry: {result['message']}", flush=True)
    emit(result)


if __name__ == "__main__":
    main()
