"""Commit the pipeline state and register model versions: the registry's task command.

    python -m batchserving.registry.register commit    # commit the pipeline's changes, dvc push
    python -m batchserving.registry.register register  # ... and tag a version if the model changed

Run both under the repo lock (``python -m batchserving.core.lock python -m ...``).

A version is a commit tagged ``iris-model@vX.Y.Z`` by GTO; its ``dvc.lock`` pins the
model's content hash. Registration is keyed on that hash, not on whether this run
changed files: a committed state whose model has no version yet (a fresh clone whose
tags were never pushed) gets one, and an unchanged model never gets a second.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from batchserving.core.names import ARTIFACT, EVALUATE_STAGE, MODEL_PATH
from batchserving.core.params import ParamsError, RegistryParams
from batchserving.registry.dvclock import LOCK_FILES, model_hash, pinned_files
from batchserving.registry.git import RegistryError, git, run_label, show
from batchserving.registry.remote import dvc_push
from batchserving.registry.versions import latest_version, register_version


def changed_files(repo: Path, paths: set[str]) -> list[str]:
    """Of ``paths``, those git sees as modified or new (ignored files are never listed)."""
    existing = sorted(p for p in paths if (repo / p).exists() or git(repo, "ls-files", "--", p))
    if not existing:
        return []
    status = git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *existing)
    return sorted(entry[3:] for entry in status.split("\0") if entry)


def commit_pipeline_state(repo: Path, identity: RegistryParams, label: str) -> str | None:
    """Commit what the pipelines changed; return the new commit, or None if nothing changed.

    Both lock files count: the model pipeline's and the weather pipeline's (the weather
    data version), with the files each pins.
    """
    locks = [repo / name for name in LOCK_FILES if (repo / name).exists()]
    if not locks:
        raise RegistryError(f"no {' or '.join(LOCK_FILES)} in {repo}: run `dvc repro` first")
    files = changed_files(repo, pinned_files(*(p.read_text(encoding="utf-8") for p in locks)))
    if not files:
        print("registry: pipeline state unchanged; nothing to commit", flush=True)
        return None
    git(repo, "add", "--", *files)
    message = f"{label}: update pipeline state\n\nChanged: {', '.join(files)}\n"
    git(repo, "commit", "--no-verify", "-q", "-m", message, "--", *files, env=identity.git_env())
    commit = git(repo, "rev-parse", "HEAD").strip()
    print(f"registry: committed {commit[:12]} ({', '.join(files)})", flush=True)
    return commit


def ensure_pipeline_current(repo: Path) -> None:
    """Refuse to register a workspace whose model differs from what dvc.lock pins."""
    result = subprocess.run(
        ["dvc", "status", "--quiet", EVALUATE_STAGE], cwd=repo, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RegistryError(
            "the training pipeline is not up to date with dvc.lock; run "
            f"`dvc repro {EVALUATE_STAGE}` before registering"
        )


def register_model(repo: Path, identity: RegistryParams, label: str) -> str | None:
    """Commit, push, and tag a new version if HEAD's model has none; return the new tag."""
    ensure_pipeline_current(repo)
    commit_pipeline_state(repo, identity, label)
    head_hash = model_hash(show(repo, "HEAD", "dvc.lock"))
    if head_hash is None:
        raise RegistryError(
            f"HEAD's dvc.lock pins no {MODEL_PATH}; run `dvc repro {EVALUATE_STAGE}`"
        )
    dvc_push(repo)
    latest = latest_version(repo)
    if latest is not None and model_hash(show(repo, latest.commit, "dvc.lock")) == head_hash:
        print(
            f"registry: model unchanged since {ARTIFACT}@{latest.version} "
            f"(md5 {head_hash}); no new version",
            flush=True,
        )
        return None
    version = register_version(repo, "HEAD", f"{label}: register {ARTIFACT}", identity)
    tag = f"{ARTIFACT}@{version.version}"
    print(f"registry: registered {tag} at {version.commit[:12]} (md5 {head_hash})", flush=True)
    return tag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["commit", "register"])
    args = parser.parse_args()
    repo = Path.cwd()
    try:
        identity = RegistryParams.load()
        if args.action == "commit":
            if commit_pipeline_state(repo, identity, run_label()):
                dvc_push(repo)
        else:
            register_model(repo, identity, run_label())
    except (ParamsError, RegistryError) as exc:
        sys.exit(f"registry: {exc}")


if __name__ == "__main__":
    main()
