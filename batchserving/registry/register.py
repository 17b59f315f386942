"""Register model versions: the register step's task command, and the pipeline commit.

    python -m batchserving.registry.register [--commit SHA]

Run it under the repo lock (``python -m batchserving.core.lock python -m ...``). It
syncs with the server, tags the commit (default: the server's HEAD) as the next
version if its model has none, and pushes the tag (``batchserving.registry.sync``).

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
from batchserving.registry.dvclock import LOCK_FILES, model_hash, pinned_files
from batchserving.registry.git import RegistryError, git, run_label, show
from batchserving.registry.remote import in_remote, remote_description
from batchserving.registry.sync import synced
from batchserving.registry.versions import latest_version, register_version, version_at
from batchserving.registry.workspace import workspace_path


def changed_files(repo: Path, paths: set[str]) -> list[str]:
    """Of ``paths``, those git sees as modified or new (ignored files are never listed)."""
    existing = sorted(p for p in paths if (repo / p).exists() or git(repo, "ls-files", "--", p))
    if not existing:
        return []
    status = git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *existing)
    return sorted(entry[3:] for entry in status.split("\0") if entry)


def commit_pipeline_state(repo: Path, label: str) -> str | None:
    """Commit what the pipelines changed; return the new commit, or None if nothing changed.

    Both lock files count: the model pipeline's and the weather pipeline's (the weather
    data version), with the files each pins. The identity comes from the workspace's
    params.yaml (``registry``), read only when there is something to commit.
    """
    locks = [repo / name for name in LOCK_FILES if (repo / name).exists()]
    if not locks:
        raise RegistryError(f"no {' or '.join(LOCK_FILES)} in {repo}: run `dvc repro` first")
    files = changed_files(repo, pinned_files(*(p.read_text(encoding="utf-8") for p in locks)))
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


def register_commit(repo: Path, commit: str, identity: RegistryParams, label: str) -> str:
    """Tag ``commit`` as a new version if its model has none; return what happened.

    The model must already be in the DVC remote (the step that trained it pushed it):
    a version is never tagged whose model another worker could not fetch.
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
    registered = version_at(repo, commit)
    if registered is not None:
        return f"registry: {commit[:12]} is already {ARTIFACT}@{registered.version}; no new version"
    latest = latest_version(repo)
    if latest is not None and model_hash(show(repo, latest.commit, PIPELINE_LOCK)) == md5:
        return (
            f"registry: model unchanged since {ARTIFACT}@{latest.version} "
            f"(md5 {md5}); no new version"
        )
    version = register_version(repo, commit, f"{label}: register {ARTIFACT}", identity)
    return f"registry: registered {ARTIFACT}@{version.version} at {version.commit[:12]} (md5 {md5})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--commit", default="", help="the commit to register (default: the server's HEAD)"
    )
    args = parser.parse_args()
    repo = workspace_path()
    try:
        identity = RegistryParams.load(repo / PARAMS_FILE)

        def step() -> str:
            commit = git(repo, "rev-parse", "--verify", f"{args.commit or 'HEAD'}^{{commit}}")
            return register_commit(repo, commit.strip(), identity, run_label())

        summary = synced(step, [], repo)
    except (ParamsError, RegistryError) as exc:
        sys.exit(f"registry: {exc}")
    print(summary, flush=True)  # the last line: the task's XCom


if __name__ == "__main__":
    main()
