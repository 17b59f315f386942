"""The model registry: git commits of the pipeline state, GTO version tags, DVC remote.

    python -m stages.registry commit     # commit what the pipeline changed, dvc push
    python -m stages.registry register   # ... and tag a new iris-model version if the model changed

Run both under the repo lock (``python -m stages.locked python -m stages.registry ...``).

A version is a commit tagged ``iris-model@vX.Y.Z`` by GTO; its ``dvc.lock`` pins the
model's content hash. Registration is keyed on that hash, not on whether this run
changed files: a committed state whose model has no version yet (a fresh clone whose
tags were never pushed) gets one, and an unchanged model never gets a second.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stages.params import ParamsError, load_section, require

ARTIFACT = "iris-model"
MODEL_PATH = "output/model/model.joblib"
MODEL_STAGE = "train"
# Git-tracked files the pipeline writes itself; dvc.lock also pins its tracked deps.
PIPELINE_FILES = ("dvc.yaml", "dvc.lock", "params.yaml", "metrics.json")


class RegistryError(RuntimeError):
    """The repo is not in a state that can be committed or registered."""


@dataclass(frozen=True)
class GitIdentity:
    """Author and committer of the registry's commits and tags (from params.yaml)."""

    name: str
    email: str

    def env(self) -> dict[str, str]:
        """Git's identity variables; they win over any user or global git config."""
        return {
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": self.email,
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": self.email,
        }


def git_identity(section: dict[str, Any]) -> GitIdentity:
    """Validate the ``registry`` section's git identity."""
    return GitIdentity(
        name=require(section, "registry", "git_name", str, "a non-empty string", bool),
        email=require(
            section, "registry", "git_email", str, "an e-mail address", lambda v: "@" in v
        ),
    )


def git(repo: Path, *args: str, check: bool = True) -> str:
    """Run git in ``repo``; return stdout. Errors name the git command that failed."""
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RegistryError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def model_hash(dvc_lock_text: str | None) -> str | None:
    """The md5 that a ``dvc.lock`` text pins for the model, or None if it pins none."""
    if not dvc_lock_text:
        return None
    lock = yaml.safe_load(dvc_lock_text) or {}
    outs = lock.get("stages", {}).get(MODEL_STAGE, {}).get("outs", [])
    return next((out.get("md5") for out in outs if out.get("path") == MODEL_PATH), None)


def pinned_files(dvc_lock_text: str) -> set[str]:
    """Files a version commit must contain: the pipeline files and the deps dvc.lock pins."""
    lock = yaml.safe_load(dvc_lock_text) or {}
    files = set(PIPELINE_FILES)
    for stage in lock.get("stages", {}).values():
        files.update(dep["path"] for dep in stage.get("deps", []))
        files.update(stage.get("params", {}))
    return files


def changed_files(repo: Path, paths: set[str]) -> list[str]:
    """Of ``paths``, those git sees as modified or new (ignored files are never listed)."""
    existing = sorted(p for p in paths if (repo / p).exists() or git(repo, "ls-files", "--", p))
    if not existing:
        return []
    status = git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *existing)
    return sorted(entry[3:] for entry in status.split("\0") if entry)


def commit_pipeline_state(repo: Path, identity: GitIdentity, label: str) -> str | None:
    """Commit what the pipeline changed; return the new commit, or None if nothing changed."""
    lock_path = repo / "dvc.lock"
    if not lock_path.exists():
        raise RegistryError(f"{lock_path} not found: run `dvc repro` before committing")
    files = changed_files(repo, pinned_files(lock_path.read_text(encoding="utf-8")))
    if not files:
        print("registry: pipeline state unchanged; nothing to commit", flush=True)
        return None
    git(repo, "add", "--", *files)
    env = {**os.environ, **identity.env()}
    message = f"{label}: update pipeline state\n\nChanged: {', '.join(files)}\n"
    result = subprocess.run(
        ["git", "commit", "--no-verify", "-q", "-m", message, "--", *files],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RegistryError(f"git commit failed: {result.stderr.strip() or result.stdout.strip()}")
    commit = git(repo, "rev-parse", "HEAD").strip()
    print(f"registry: committed {commit[:12]} ({', '.join(files)})", flush=True)
    return commit


def dvc_push(repo: Path) -> None:
    """Send the workspace's DVC outputs to the default remote."""
    result = subprocess.run(["dvc", "push", "-q"], cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        raise RegistryError(
            f"dvc push failed: {result.stderr.strip()}; check the remote with `dvc remote list`"
        )
    print("registry: dvc push done", flush=True)


def latest_version(repo: Path) -> Any | None:
    """The latest registered ``iris-model`` version (a GTO object), or None."""
    from gto.api import find_latest_version
    from gto.exceptions import ArtifactNotFound

    try:
        return find_latest_version(str(repo), ARTIFACT)
    except ArtifactNotFound:  # no tag names the artifact yet
        return None


def ensure_pipeline_current(repo: Path) -> None:
    """Refuse to register a workspace whose model differs from what dvc.lock pins."""
    result = subprocess.run(
        ["dvc", "status", "--quiet", "evaluate"], cwd=repo, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RegistryError(
            "the training pipeline is not up to date with dvc.lock; run "
            "`dvc repro evaluate` before registering"
        )


def register_model(repo: Path, identity: GitIdentity, label: str) -> str | None:
    """Commit, push, and tag a new version if HEAD's model has none; return the new tag."""
    ensure_pipeline_current(repo)
    commit_pipeline_state(repo, identity, label)
    head_hash = model_hash(git(repo, "show", "HEAD:dvc.lock", check=False))
    if head_hash is None:
        raise RegistryError(f"HEAD's dvc.lock pins no {MODEL_PATH}; run `dvc repro evaluate`")
    dvc_push(repo)
    latest = latest_version(repo)
    if latest is not None:
        latest_hash = model_hash(git(repo, "show", f"{latest.commit_hexsha}:dvc.lock", check=False))
        if latest_hash == head_hash:
            print(
                f"registry: model unchanged since {ARTIFACT}@{latest.version} "
                f"(md5 {head_hash}); no new version",
                flush=True,
            )
            return None
    from gto.api import register

    os.environ.update(identity.env())  # GTO's annotated tags take the committer from here
    event = register(str(repo), ARTIFACT, "HEAD", message=f"{label}: register {ARTIFACT}")
    tag = f"{ARTIFACT}@{event.version}"
    print(f"registry: registered {tag} at {event.commit_hexsha[:12]} (md5 {head_hash})", flush=True)
    return tag


def run_label() -> str:
    """Who is writing: the Airflow DAG run (from the task's environment) or a person."""
    dag_id = os.environ.get("AIRFLOW_CTX_DAG_ID")
    run_id = os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")
    return f"{dag_id} run {run_id}" if dag_id and run_id else "manual run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["commit", "register"])
    args = parser.parse_args()
    repo = Path.cwd()
    try:
        identity = git_identity(load_section("registry"))
        if args.action == "commit":
            if commit_pipeline_state(repo, identity, run_label()):
                dvc_push(repo)
        else:
            register_model(repo, identity, run_label())
    except (ParamsError, RegistryError) as exc:
        sys.exit(f"registry: {exc}")


if __name__ == "__main__":
    main()
