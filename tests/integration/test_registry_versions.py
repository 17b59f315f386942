"""Registry queries on real git tags: the newest prod assignment is the highest counter."""

from __future__ import annotations

import os
from pathlib import Path

from batchserving.core.names import ARTIFACT, PROD_STAGE
from batchserving.registry.versions import current_prod, prod_assignments
from tests.conftest import run

IDENTITY = ["-c", "user.name=A Worker", "-c", "user.email=worker@example.invalid"]


def tag(repo: Path, name: str, date: str) -> None:
    """An annotated tag made at ``date`` by the clock of whichever worker made it."""
    env = {**os.environ, "GIT_COMMITTER_DATE": date}
    run(["git", *IDENTITY, "tag", "-a", name, "-m", "assigned"], cwd=repo, env=env)


def test_assignments_follow_the_counter_not_the_workers_clocks(tmp_path: Path) -> None:
    repo = tmp_path / "registry"
    run(["git", "init", "-q", str(repo)])
    for n in (1, 2):
        run(["git", *IDENTITY, "commit", "-q", "--allow-empty", "-m", f"v{n}"], cwd=repo)
        tag(repo, f"{ARTIFACT}@v0.0.{n}", "2026-11-28T00:00:00+09:00")
    run(["git", "checkout", "-q", "HEAD~1"], cwd=repo)
    tag(repo, f"{ARTIFACT}#{PROD_STAGE}#1", "2026-11-28T01:00:00+09:00")
    run(["git", "checkout", "-q", "-"], cwd=repo)
    # The second assignment comes from a worker whose clock is an hour behind.
    tag(repo, f"{ARTIFACT}#{PROD_STAGE}#2", "2026-11-28T00:30:00+09:00")

    assert [a.version for a in prod_assignments(repo)] == ["v0.0.1", "v0.0.2"]
    assert current_prod(repo).version == "v0.0.2"
