"""The launcher runs a triggerer: its job is in the metadata DB and keeps heartbeating.

Deferred tasks, deadline callbacks and human-in-the-loop operators need one; without it
they wait forever and nothing says why.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.e2e.conftest import E2E

# The triggerer heartbeats every few seconds ([triggerer] job_heartbeat_sec, default 5).
HEARTBEAT_WAIT = 30


def triggerer_heartbeat(db_path: Path) -> str | None:
    """The latest heartbeat of a running triggerer job, as the DB stores it (None: none)."""
    with sqlite3.connect(db_path) as db:
        row = db.execute(
            "SELECT max(latest_heartbeat) FROM job"
            " WHERE job_type = 'TriggererJob' AND state = 'running'"
        ).fetchone()
    return row[0]


def test_triggerer_job_heartbeats_in_the_db(e2e: E2E) -> None:
    server = e2e.server
    first = triggerer_heartbeat(server.db_path)
    assert first is not None, "no running triggerer job in the metadata DB"
    deadline = time.monotonic() + HEARTBEAT_WAIT
    while (later := triggerer_heartbeat(server.db_path)) == first:
        assert time.monotonic() < deadline, f"the triggerer stopped heartbeating at {first}"
        time.sleep(1)
    assert later is not None and later > first
    assert server.rest.health()["triggerer"]["status"] == "healthy"
