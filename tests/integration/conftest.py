"""Fixtures the integration tests share: a cluster's shared state (git server, DVC remote)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_any_worker import Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    """A bare git server made from the project's working tree, and an empty DVC remote."""
    return Cluster(tmp_path)
