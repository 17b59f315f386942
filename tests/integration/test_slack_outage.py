"""A Slack outage never changes a task's outcome, and each alert attempt is bounded in time.

One ``simple_train`` run per Slack condition (no connection, receiver down, answering 500,
answering slower than the notifier's timeout), with retries off. The model repo has an
invalid ``registry.git_email``: ``repro_evaluate`` succeeds and ``register_model`` fails,
so each run has a succeeding task and a failing one whose failure alert goes to Slack.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchserving import DAGS_FOLDER
from tests.conftest import git, snapshot_project
from tests.fakes.slack import SlackReceiver

EXPECTED_STATES = {"repro_evaluate": "success", "register_model": "failed"}


@pytest.fixture(scope="module")
def broken_registry_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A model repo whose training works but whose registry identity is invalid."""
    repo = snapshot_project(tmp_path_factory.mktemp("slack-outage") / "model-repo")
    params = repo / "params.yaml"
    text, count = re.subn(r"(?m)^(\s*git_email:).*$", r"\1 not-an-email", params.read_text())
    assert count == 1
    params.write_text(text)
    # Committed, as a person's push would be: training has nothing to commit, registering fails.
    git(
        repo, "-c", "user.name=Test", "-c", "user.email=test@example.invalid", "commit", "-qam", "x"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODEL_REPO", str(repo))
        yield repo


@pytest.fixture(scope="module")
def simple_train(airflow_db):
    from airflow.dag_processing.dagbag import BundleDagBag

    # Parsed as the DAG processor does: the dags folder (bundle root) on sys.path.
    bag = BundleDagBag(dag_folder=DAGS_FOLDER / "01-simple-train.py", bundle_path=DAGS_FOLDER)
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("simple_train")
    for task in dag.tasks:
        task.retries = 0  # one attempt: the failure and its alert happen at once
    return dag


def closed_port_url() -> str:
    """A webhook URL on a port where nothing listens (the receiver is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/services/T0/B0/X"


@pytest.mark.parametrize("slack", ["absent", "down", "error_500", "slow"])
def test_slack_outage_changes_no_outcome(
    slack: str, simple_train, broken_registry_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dags.batchserving_dags.alerts import SLACK_TIMEOUT_SECONDS

    receiver = None
    if slack == "absent":
        monkeypatch.delenv("AIRFLOW_CONN_MY_WEBHOOK", raising=False)
        url = None
    elif slack == "down":
        url = closed_port_url()
    else:
        mode, delay = (
            ("error", 0.0) if slack == "error_500" else ("slow", SLACK_TIMEOUT_SECONDS + 20)
        )
        receiver = SlackReceiver(mode=mode, delay=delay).__enter__()
        url = receiver.url
    if url:
        conn = {"conn_type": "slackwebhook", "password": url}
        monkeypatch.setenv("AIRFLOW_CONN_MY_WEBHOOK", json.dumps(conn))
    try:
        started = time.monotonic()
        dag_run = simple_train.test()
        ended = time.monotonic()
    finally:
        if receiver:
            receiver.__exit__(None, None, None)

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states == EXPECTED_STATES, f"Slack {slack}: task states {states}"
    assert dag_run.state == "failed"
    if receiver:  # the alert was really attempted, about the task that failed
        assert receiver.messages, f"Slack {slack}: no alert attempt reached the receiver"
        assert "register_model" in receiver.texts[0]
        assert url not in receiver.texts[0]
        # From the first attempt to the end of the run: each attempt waits at most the
        # timeout (plus a few seconds to finish the run), however long Slack takes.
        attempts = len(receiver.messages)
        after_alert = ended - receiver.arrivals[0]
        assert after_alert <= attempts * SLACK_TIMEOUT_SECONDS + 5, (
            f"Slack {slack}: run ended {after_alert:.1f}s after the first alert attempt "
            f"({attempts} attempt(s), timeout {SLACK_TIMEOUT_SECONDS}s)"
        )
        print(f"slack={slack}: {attempts} attempt(s), run ended {after_alert:.1f}s after the first")
    print(f"slack={slack}: dag.test() took {ended - started:.1f}s")
