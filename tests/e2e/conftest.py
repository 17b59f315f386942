"""One real Airflow server for the whole end-to-end session (started once: ~20 s on 2 cores).

It runs on a temporary clone of the project (``MODEL_REPO``), with pool ``model_repo``,
connection ``my_webhook`` pointing at a local fake Slack and, when ``batchserving.weather.fake_kma``
exists, connection ``kma_api`` pointing at the fake KMA server. Both secrets are random
per session so the tests can look for them everywhere afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from batchserving import PROJECT_ROOT
from batchserving.weather.fake_kma import FakeKma
from dags.batchserving_dags.pool import POOL, POOL_DESCRIPTION, POOL_SLOTS
from scripts.airflow_server import AirflowServer
from tests.conftest import snapshot_project
from tests.fakes.slack import SlackReceiver

# The final contract: exactly these five DAGs.
EXPECTED_DAGS = {
    "simple_train",
    "model_selection",
    "batch_inference",
    "crawling_weather",
    "monitor_predictions",
}


@dataclass
class E2E:
    """The running server and everything it was given."""

    server: AirflowServer
    model_repo: Path
    slack: SlackReceiver
    slack_url: str  # secret: the webhook URL
    kma_key: str  # secret: the KMA service key
    kma: FakeKma


def start_fake_kma(stack: ExitStack, key: str) -> FakeKma:
    """Start the fake KMA server accepting ``key``, stopped with ``stack``."""
    return stack.enter_context(FakeKma(key=key))


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    """Start the server (stopped at the end of the session, even after a failure)."""
    root = tmp_path_factory.mktemp("e2e")
    repo = snapshot_project(root / "model-repo")
    with ExitStack() as stack:
        slack = stack.enter_context(SlackReceiver())
        # A webhook URL with a random secret part, as a real one has.
        slack_url = slack.url.replace("/T0/B0/X", f"/TE2E/BE2E/{secrets.token_hex(12)}")
        # '+', '/' and '=' as in real KMA keys, so a leaked URL-encoded form is found too.
        kma_key = f"e2e+KmA/{secrets.token_hex(12)}/kEy=="
        kma = start_fake_kma(stack, kma_key)
        server = AirflowServer(home=root / "airflow-home", model_repo=repo)
        stack.callback(server.stop)  # runs even when start() fails half way
        server.start()
        server.rest.add_pool(POOL, POOL_SLOTS, POOL_DESCRIPTION)
        server.rest.add_connection("my_webhook", "slackwebhook", password=slack_url)
        if kma:
            server.rest.add_connection("kma_api", "http", host=kma.base_url, password=kma_key)
        yield E2E(server, repo, slack, slack_url, kma_key, kma)


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    """Where the UI test leaves its screenshots for people to look at (project output/)."""
    path = PROJECT_ROOT / "output" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
