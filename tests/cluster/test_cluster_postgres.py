"""The cluster's metadata DB stops fast, and is gone for good before it starts again.

The cluster launcher's PostgreSQL alone (a free 127.0.0.1 port, a temp dir, stopped by
pid). A client in the middle of a transaction, as a Celery worker finishing its tasks
is, must not hold the shutdown: PostgreSQL's smart shutdown (SIGTERM) would wait for it
until the launcher's SIGKILL, leaving ``postmaster.pid`` behind for the next start.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.cluster.cluster import Cluster


@pytest.fixture
def metadata_db() -> Iterator[Cluster]:
    # Not pytest's tmp_path: its parents are 0700, and PostgreSQL runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="cluster-postgres-"))
    root.chmod(0o711)
    db = Cluster(data=root / "data")
    db.prepare_dirs()
    db.state.load_or_create_secrets()
    db.state.port("postgres")
    try:
        db.start_part("postgres")
        yield db
    finally:
        db.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_db_stops_fast_with_a_client_in_a_transaction(metadata_db: Cluster) -> None:
    import psycopg2

    client = psycopg2.connect(metadata_db.postgres.dsn("airflow"))
    try:
        with client.cursor() as cur:
            cur.execute("SELECT 1")  # psycopg2 opened a transaction: the client stays in it
        t0 = time.monotonic()
        killed = metadata_db.stop()
        took = time.monotonic() - t0
    finally:
        client.close()
    assert killed == [], f"PostgreSQL needed SIGKILL: {killed}"
    assert took < 10, f"stopping took {took:.1f} s"
    assert not (metadata_db.postgres.pgdata / "postmaster.pid").exists()

    metadata_db.start_part("postgres")  # at once, on the same port and data
    assert metadata_db.postgres.connects("airflow")
