"""Checks on a model repo and an Airflow home after a run, shared by the end-to-end tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from batchserving.core.names import ARTIFACT
from batchserving.registry.dvclock import model_hash
from batchserving.serving.deployment import file_md5
from tests.conftest import git

LOCK_CONTENTION = ("Unable to acquire lock", "is busy")


def in_dvc_storage(repo: Path, md5: str) -> bool:
    """Whether the object ``md5`` is in the repo's DVC cache or its default local remote."""
    rel = Path("files", "md5", md5[:2], md5[2:])
    return (repo / ".dvc" / "cache" / rel).is_file() or (repo / "dvc-remote" / rel).is_file()


def version_tags(repo: Path) -> list[str]:
    return git(repo, "tag", "--list", f"{ARTIFACT}@v*").split()


def registry_problems(repo: Path) -> list[str]:
    """Every version tag must point at a commit whose dvc.lock pins a model we still have."""
    problems = []
    for tag in version_tags(repo):
        commit = git(repo, "rev-parse", f"{tag}^{{commit}}").strip()
        shown = subprocess.run(
            ["git", "show", f"{commit}:dvc.lock"], cwd=repo, capture_output=True, text=True
        )
        md5 = model_hash(shown.stdout if shown.returncode == 0 else None)
        if md5 is None:
            problems.append(f"{tag} -> {commit[:12]}: dvc.lock pins no model")
        elif not in_dvc_storage(repo, md5):
            problems.append(f"{tag} -> {commit[:12]}: model md5 {md5} in neither cache nor remote")
    return problems


@dataclass(frozen=True)
class Prod:
    version: str
    commit: str


def current_prod(repo: Path) -> list[Prod]:
    """The versions GTO currently assigns to stage ``prod`` (the registry's answer)."""
    from gto.api import find_versions_in_stage

    found = find_versions_in_stage(str(repo), ARTIFACT, "prod")
    found = found if isinstance(found, list) else [found] if found else []
    return [Prod(v.version, v.commit_hexsha) for v in found]


def deployment_problems(repo: Path, prod: Prod) -> list[str]:
    """output/serving must hold exactly the prod version's model, described by model.json."""
    from batchserving.serving.deployment import read_deployment

    deployment = read_deployment(repo / "output" / "serving")
    record = deployment.record
    problems = []
    if record.get("version") != prod.version or record.get("commit") != prod.commit:
        problems.append(
            f"model.json names {record.get('version')} at {record.get('commit')}, "
            f"prod is {prod.version} at {prod.commit}"
        )
    pinned = model_hash(git(repo, "show", f"{prod.commit}:dvc.lock"))
    actual = file_md5(Path(deployment.model_path))
    if not (record.get("model_md5") == pinned == actual):
        problems.append(
            f"model md5s differ: model.json {record.get('model_md5')}, "
            f"prod dvc.lock {pinned}, deployed file {actual}"
        )
    return problems


def files_under(*roots: Path) -> Iterable[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file())


def secret_hits(
    secrets: dict[str, str], paths: Iterable[Path], blobs: dict[str, bytes]
) -> list[str]:
    """Where any secret value appears: in the given files' bytes or the named blobs."""
    needles = {name: value.encode() for name, value in secrets.items() if value}
    hits = []
    for path in paths:
        data = path.read_bytes()
        hits += [f"{name} in {path}" for name, needle in needles.items() if needle in data]
    for label, data in blobs.items():
        hits += [f"{name} in {label}" for name, needle in needles.items() if needle in data]
    return hits


def git_history_blob(repo: Path) -> bytes:
    """Every commit's patch and message, every tag's annotation, on all refs."""
    log = subprocess.run(
        ["git", "log", "-p", "--all", "--format=fuller"], cwd=repo, capture_output=True, check=True
    ).stdout
    tags = subprocess.run(
        ["git", "tag", "-l", "-n999"], cwd=repo, capture_output=True, check=True
    ).stdout
    return log + tags
