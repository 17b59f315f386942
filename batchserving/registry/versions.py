"""GTO versions and stage assignments of the model artifact: every registry query, once.

A version is a commit tagged ``iris-model@vX.Y.Z``; ``prod`` is the version of the newest
``iris-model#prod#N`` tag (what ``gto show`` and ``dvc artifacts get --stage prod``
resolve). Tags are written through GTO with the registry's identity as tagger.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from batchserving.core.names import ARTIFACT, PROD_STAGE
from batchserving.core.params import RegistryParams
from batchserving.registry.git import RegistryError


@dataclass(frozen=True)
class ModelVersion:
    """A registered version; ``assigned_at`` and ``tag`` describe its prod assignment."""

    version: str
    commit: str
    assigned_at: datetime | None = None
    tag: str | None = None


def latest_version(repo: Path) -> ModelVersion | None:
    """The latest registered version, or None."""
    from gto.api import find_latest_version
    from gto.exceptions import ArtifactNotFound

    try:
        found = find_latest_version(str(repo), ARTIFACT)
    except ArtifactNotFound:  # no tag names the artifact yet
        return None
    return None if found is None else ModelVersion(found.version, found.commit_hexsha)


def _tag_counter(tag: str | None) -> int:
    match = re.search(r"#(\d+)$", tag or "")
    return int(match.group(1)) if match else 0


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def prod_assignments(repo: Path) -> list[ModelVersion]:
    """Every ``prod`` assignment of the artifact, oldest first (GTO's tag history).

    Ordered by tag time, then by GTO's tag counter, so that the last one is the version
    ``dvc artifacts get --stage prod`` resolves (the newest prod tag).
    """
    from gto.api import history

    events = [
        e
        for e in history(str(repo), ARTIFACT, ascending=True)
        if e["event"] == "assignment" and e["stage"] == PROD_STAGE
    ]
    events.sort(key=lambda e: (e["timestamp"], _tag_counter(e["ref"])))
    return [
        ModelVersion(e["version"], e["commit"], _as_utc(e["timestamp"]), e["ref"]) for e in events
    ]


def current_prod(repo: Path) -> ModelVersion | None:
    """The champion: the version of the newest prod assignment, or None (bootstrap)."""
    assignments = prod_assignments(repo)
    return assignments[-1] if assignments else None


def registered_version(repo: Path, version: str) -> ModelVersion:
    """A registered version by name (``vX.Y.Z``), or a RegistryError listing the known ones."""
    from gto.api import history

    registered = {
        e["version"]: e["commit"]
        for e in history(str(repo), ARTIFACT, ascending=True)
        if e["event"] == "registration"
    }
    if version not in registered:
        known = ", ".join(registered) or "none"
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
