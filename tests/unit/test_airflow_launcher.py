"""The Airflow launcher that make demo and the e2e tests share: a dead component is news."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.airflow_server import AirflowServer


def test_a_wait_fails_at_once_naming_the_component_that_exited(tmp_path: Path) -> None:
    """A scheduler that died (here: printed its last words and exited 3) ends the wait."""
    server = AirflowServer(home=tmp_path, model_repo=tmp_path / "repo")
    with (tmp_path / "scheduler.out").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "print('database is locked'); raise SystemExit(3)"],
            stdout=log,
        )
    server.procs["scheduler"] = proc
    proc.wait(timeout=30)
    started = time.monotonic()
    with pytest.raises(RuntimeError) as raised:
        server.rest.wait(lambda: False, timeout=60, what="runs to finish")
    assert time.monotonic() - started < 5  # not the 60 s timeout
    assert "airflow scheduler exited with 3" in str(raised.value)
    assert "database is locked" in str(raised.value)


def test_sqlite_waits_longer_than_its_default_for_its_one_writer(tmp_path: Path) -> None:
    server = AirflowServer(home=tmp_path, model_repo=tmp_path / "repo")
    conn = server.env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert conn == f"sqlite:///{tmp_path / 'airflow.db'}?timeout=15"
