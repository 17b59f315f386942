"""The deadline callback (``alerts.deadline_alert``, awaited by the triggerer) against a
local fake Slack: one message naming the run, bounded; an outage is logged, never raised.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time

import pytest

from batchserving import DAGS_FOLDER
from tests.fakes.slack import SlackReceiver

CONTEXT = {  # what the scheduler hands the callback (Deadline.handle_miss)
    "dag_run": {"dag_id": "batch_inference", "dag_run_id": "scheduled__2026-01-01T00:05:00"},
    "deadline": {"id": "0", "deadline_time": "2026-01-01T00:10:00+00:00"},
}


@pytest.fixture
def alerts(monkeypatch: pytest.MonkeyPatch):
    """The module as the triggerer imports it (the dags folder on sys.path)."""
    monkeypatch.syspath_prepend(str(DAGS_FOLDER))
    return importlib.import_module("batchserving_dags.alerts")


def use_webhook(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MY_WEBHOOK", json.dumps({"conn_type": "slackwebhook", "password": url})
    )


def test_one_message_names_the_run_and_what_was_missed(alerts, monkeypatch) -> None:
    with SlackReceiver() as slack:
        use_webhook(monkeypatch, slack.url)
        asyncio.run(alerts.deadline_alert(CONTEXT, "not done 5 min after it was queued"))
    assert slack.texts == [
        ":alarm_clock: Deadline missed: dag `batch_inference`, run "
        "`scheduled__2026-01-01T00:05:00`, not done 5 min after it was queued "
        "(deadline 2026-01-01 09:10:00+09:00). The run goes on; its outcome is its own."
    ]


def test_values_from_the_db_are_bounded_and_on_one_line(alerts, monkeypatch) -> None:
    context = {"dag_run": {"dag_id": "d", "dag_run_id": "manual\n" + "x" * 5000}}
    with SlackReceiver() as slack:
        use_webhook(monkeypatch, slack.url)
        asyncio.run(alerts.deadline_alert(context, "late"))
    (text,) = slack.texts
    assert "\n" not in text and len(text) < 400 and "x" * alerts.SHOWN_CHARS not in text


@pytest.mark.parametrize("outage", ["absent", "error_500", "slow"])
def test_an_outage_is_logged_and_never_raised(alerts, monkeypatch, caplog, outage) -> None:
    mode = {"absent": "ok", "error_500": "error", "slow": "slow"}[outage]
    with SlackReceiver(mode=mode, delay=alerts.SLACK_TIMEOUT_SECONDS + 20) as slack:
        if outage == "absent":
            monkeypatch.delenv("AIRFLOW_CONN_MY_WEBHOOK", raising=False)
        else:
            use_webhook(monkeypatch, slack.url)
        started = time.monotonic()
        asyncio.run(alerts.deadline_alert(CONTEXT, "late"))  # returns: raises nothing
        took = time.monotonic() - started
    assert "Slack alert not sent" in caplog.text
    assert slack.url not in caplog.text
    assert took < alerts.SLACK_TIMEOUT_SECONDS + 8, f"the attempt took {took:.1f}s"
    assert len(slack.messages) == (0 if outage == "absent" else 1)
