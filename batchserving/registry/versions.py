"""GTO versions and stage assignments of the model artifact: every registry query, once.

A version is a commit tagged ``iris-model@vX.Y.Z``; ``prod`` is the version of the newest
``iris-model#prod#N`` tag (what ``gto show`` and ``dvc artifacts get --stage prod``
resolve). Tags are written through GTO with the registry's identity as tagger, and read
with one ``git for-each-ref`` per lookup, their names parsed by GTO.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from batchserving.core.names import ARTIFACT, PROD_STAGE
from batchserving.core.params import RegistryParams
from batchserving.registry.git import RegistryError, git


@dataclass(frozen=True)
class ModelVersion:
    """A registered version; ``assigned_at`` and ``tag`` describe its prod assignment."""

    version: str
    commit: str
    assigned_at: datetime | None = None
    tag: str | None = None


@dataclass(frozen=True)
class _Tag:
    """One GTO tag of the artifact: its parsed name, the commit it names, its time."""

    name: str
    parsed: dict
    commit: str
    created: datetime


TAG_FORMAT = "--format=%(refname:strip=2)%09%(objectname)%09%(*objectname)%09%(creatordate:unix)"


def _tags(git_dir: Path, pattern: str, *options: str) -> list[_Tag]:
    """The artifact's tags matching ``pattern``, sorted and cut by git (``options``).

    Two ``git for-each-ref`` calls: the names alone (sorting and cutting names reads no
    tag object), then the commit and time of just the tags kept. A lookup thus reads a
    handful of objects however many versions the registry holds. Names are parsed by GTO,
    so GTO's naming rules decide what a tag means.
    """
    from gto.tag import parse_name

    names = git(
        git_dir, "for-each-ref", "--format=%(refname)", *options, f"refs/tags/{pattern}"
    ).split()
    out = git(git_dir, "for-each-ref", TAG_FORMAT, *names) if names else ""
    tags = []
    for line in out.splitlines():
        name, obj, peeled, created = line.split("\t")
        parsed = parse_name(name, raise_on_fail=False)
        if parsed and parsed.get("name") == ARTIFACT:
            moment = datetime.fromtimestamp(int(created), UTC)
            tags.append(_Tag(name, parsed, peeled or obj, moment))
    return tags


def _semver(version: str):
    from gto.versions import SemVer

    return SemVer(version)


def registered_versions(git_dir: Path) -> dict[str, str]:
    """Every registered version -> its commit."""
    tags = _tags(git_dir, f"{ARTIFACT}@*")
    return {t.parsed["version"]: t.commit for t in tags if t.parsed.get("version")}


def _newest_version(git_dir: Path, *options: str) -> ModelVersion | None:
    # git's version sort orders vX.Y.Z numerically; a few extra guard against odd names.
    tags = _tags(git_dir, f"{ARTIFACT}@*", "--sort=-v:refname", "--count=5", *options)
    versions = {t.parsed["version"]: t.commit for t in tags if t.parsed.get("version")}
    if not versions:
        return None
    latest = max(versions, key=_semver)
    return ModelVersion(latest, versions[latest])


def latest_version(git_dir: Path) -> ModelVersion | None:
    """The latest registered version (highest semantic version), or None."""
    return _newest_version(git_dir)


def version_at(git_dir: Path, commit: str) -> ModelVersion | None:
    """The version registered on ``commit``, or None.

    ``git describe --exact-match`` reads the tags' peeled commits from packed-refs, where
    filtering with ``--points-at`` would read every tag object.
    """
    from gto.tag import parse_name

    name = git(
        git_dir,
        "describe",
        "--exact-match",
        "--tags",
        "--match",
        f"{ARTIFACT}@*",
        commit,
        check=False,
    ).strip()
    parsed = parse_name(name, raise_on_fail=False) if name else None
    if not parsed or not parsed.get("version"):
        return None
    return ModelVersion(parsed["version"], commit)


def prod_assignments(git_dir: Path) -> list[ModelVersion]:
    """Every ``prod`` assignment of the artifact, oldest first.

    Ordered by GTO's tag counter (``#prod#N``), as ``current_prod`` picks the newest: the
    counters are computed after a sync and published atomically, so they follow the order
    of the assignments whatever the clocks of the workers that made them.
    """
    tags = [t for t in _tags(git_dir, f"{ARTIFACT}#{PROD_STAGE}#*") if t.parsed.get("stage")]
    tags.sort(key=lambda t: (t.parsed.get("counter") or 0, t.created))
    by_commit: dict[str, str] = {}
    for version, commit in sorted(
        registered_versions(git_dir).items(), key=lambda v: _semver(v[0])
    ):
        by_commit[commit] = version  # the highest version of a commit wins
    return [
        ModelVersion(by_commit[t.commit], t.commit, t.created, t.name)
        for t in tags
        if t.commit in by_commit
    ]


def current_prod(git_dir: Path) -> ModelVersion | None:
    """The champion: the version of the newest prod assignment, or None (bootstrap).

    Newest is the highest GTO counter (``#prod#N``): counters are computed after a sync
    and published atomically, so they grow with time, and sorting names reads no object.
    """
    newest = _tags(git_dir, f"{ARTIFACT}#{PROD_STAGE}#*", "--sort=-v:refname", "--count=1")
    if not newest:
        return None
    tag = newest[0]
    version = version_at(git_dir, tag.commit)
    if version is None:
        raise RegistryError(f"{tag.name} names commit {tag.commit[:12]}, which has no version")
    return ModelVersion(version.version, tag.commit, tag.created, tag.name)


def registered_version(git_dir: Path, version: str) -> ModelVersion:
    """A registered version by name (``vX.Y.Z``), or a RegistryError listing the known ones."""
    registered = registered_versions(git_dir)
    if version not in registered:
        known = ", ".join(sorted(registered, key=_semver)) or "none"
        raise RegistryError(
            f"{ARTIFACT} has no registered version {version!r}; registered: {known} "
            f"(see `gto show {ARTIFACT}`)"
        )
    return ModelVersion(version, registered[version])


def register_version(repo: Path, ref: str, message: str, identity: RegistryParams) -> ModelVersion:
    """``gto register`` the commit ``ref`` as the next version; return it."""
    from gto.api import register

    event = register(
        str(repo),
        ARTIFACT,
        ref,
        message=message,
        author=identity.git_name,
        author_email=identity.git_email,
    )
    return ModelVersion(event.version, event.commit_hexsha)


def assign_prod(
    repo: Path,
    version: ModelVersion,
    message: str,
    identity: RegistryParams,
    previous: ModelVersion | None,
) -> ModelVersion:
    """Create the tag ``iris-model#prod#N`` on ``version``: the newest prod tag. Return prod.

    ``previous`` is the prod assignment this one replaces (None at bootstrap).
    """
    from gto.api import assign

    if previous is not None and previous.assigned_at is not None:
        # Tag times have one-second resolution and `dvc artifacts get --stage` picks the
        # newest: make this tag strictly newer than the one it replaces.
        while int(time.time()) <= int(previous.assigned_at.timestamp()):
            time.sleep(0.1)
    assign(
        str(repo),
        ARTIFACT,
        PROD_STAGE,
        version=version.version,
        message=message,
        force=True,  # a version that was prod before (rollback) gets a new tag too
        author=identity.git_name,
        author_email=identity.git_email,
    )
    now = current_prod(repo)
    if now is None or now.version != version.version:
        raise RegistryError(
            f"assigned {PROD_STAGE} to {version.version} but GTO resolves "
            f"{now.version if now else 'nothing'}; check `gto show {ARTIFACT}`"
        )
    return now
