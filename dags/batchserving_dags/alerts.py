"""Slack alerts for every DAG, through the Slack provider's webhook notifier.

The DAGs name four callbacks: ``failure_alert`` (every task's, in ``default_args``),
``summary_alert(task_id)`` (a success alert whose text is the ``message`` of the task's
result), ``monitoring_alert`` (the monitoring day's alert, when its summary has one) and
``deadline_alert`` (a run past its deadline, ``batchserving_dags.deadlines``; the
triggerer awaits it). Connection ``my_webhook`` (type ``slackwebhook``, the webhook URL as
password) is read when an alert is sent, never when a DAG file is parsed. A missing
connection or a Slack outage is logged as a warning and never changes the task's outcome;
each attempt is bounded by ``SLACK_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

SLACK_CONN_ID = "my_webhook"
SLACK_TIMEOUT_SECONDS = 10

FAILURE_TEXT = (
    ":red_circle: Task failed: dag `{{ ti.dag_id }}`, task `{{ ti.task_id }}`, "
    "logical date {{ dag_run.logical_date or dag_run.run_after }}, try {{ ti.try_number }}.\n"
    "Log: {{ ti.log_url }}"
)

DEADLINE_TEXT = (
    ":alarm_clock: Deadline missed: dag `{dag_id}`, run `{run_id}`, {missed} "
    "(deadline {deadline_time}). The run goes on; its outcome is its own."
)
SHOWN_CHARS = 120  # of each value from the DB in a deadline alert
DAGS_TIMEZONE = "Asia/Seoul"

# Exception texts from HTTP clients may quote the webhook URL, which is the secret.
URL_PATTERN = re.compile(r"https?://\S+")

log = logging.getLogger(__name__)


def post_alert(text: str, context: Any) -> None:
    """Render ``text`` (Jinja, with the task's context) and post it; never raise.

    The Slack provider's notifier renders and sends it; a fresh one per alert, so a
    process that runs several tasks (``dag.test()``) renders each alert from its template.
    """
    try:
        BaseHook.get_connection(SLACK_CONN_ID)
    except AirflowNotFoundException:
        _warn_no_connection()
        return
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    notifier = SlackWebhookNotifier(
        slack_webhook_conn_id=SLACK_CONN_ID, text=text, timeout=SLACK_TIMEOUT_SECONDS
    )
    try:
        notifier.render_template_fields(context)
        notifier.notify(context)
    except Exception as exc:  # noqa: BLE001 - an outage must not change the task's outcome
        _warn_not_sent(exc)
    else:
        log.info("Slack alert sent through connection %r", SLACK_CONN_ID)


def _warn_no_connection() -> None:
    log.warning(
        "Slack alert not sent: connection %r is not configured "
        "(add it with `airflow connections add %s --conn-type slackwebhook "
        "--conn-password <webhook URL>`)",
        SLACK_CONN_ID,
        SLACK_CONN_ID,
    )


def _warn_not_sent(exc: Exception) -> None:
    reason = URL_PATTERN.sub("<webhook>", str(exc))[:300]
    log.warning("Slack alert not sent (%s: %s)", type(exc).__name__, reason)


def _shown(value: Any) -> str:
    """A value from the metadata DB, bounded and on one line, for a message."""
    text = " ".join(str(value).split())
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def deadline_text(context: dict[str, Any] | None, missed: str) -> str:
    """The deadline alert's message from the triggerer's context (the run, the deadline)."""
    run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    return DEADLINE_TEXT.format(
        dag_id=_shown(run.get("dag_id", "?")),
        run_id=_shown(run.get("dag_run_id", "?")),
        missed=_shown(missed),
        deadline_time=_in_korean_time(deadline.get("deadline_time", "?")),
    )


def _in_korean_time(value: Any) -> str:
    """A timestamp in the DAGs' time zone (every schedule is in it), else as it came."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return _shown(value)
    if moment.tzinfo is None:
        return _shown(value)
    return moment.astimezone(ZoneInfo(DAGS_TIMEZONE)).isoformat(sep=" ", timespec="seconds")


async def deadline_alert(context: dict[str, Any] | None = None, missed: str = "late") -> None:
    """A ``DeadlineAlert``'s callback, awaited by the triggerer: one Slack message through
    ``my_webhook``. Like every alert it never raises, and each attempt is bounded."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    hook = SlackWebhookHook(slack_webhook_conn_id=SLACK_CONN_ID, timeout=SLACK_TIMEOUT_SECONDS)
    try:
        async with asyncio.timeout(SLACK_TIMEOUT_SECONDS + 5):  # the connection's lookup too
            await hook.async_send(text=deadline_text(context, missed))
    except AirflowNotFoundException:
        _warn_no_connection()
    except Exception as exc:  # noqa: BLE001 - an outage must not change any run's outcome
        _warn_not_sent(exc)
    else:
        log.info("Slack deadline alert sent through connection %r", SLACK_CONN_ID)


def failure_alert(context: Any) -> None:
    """The task-level failure alert every DAG puts in its ``default_args``."""
    post_alert(FAILURE_TEXT, context)


def _post_summary(task_id: str, context: Any) -> None:
    from batchserving.core.results import read_result

    message = read_result(context["ti"].xcom_pull(task_ids=task_id), task_id)["message"]
    post_alert("{% raw %}" + str(message) + "{% endraw %}", context)


def summary_alert(task_id: str):
    """Success alert whose text is the ``message`` of the task's result: one line, no secrets."""
    return functools.partial(_post_summary, task_id)


def monitoring_alert(context: Any) -> None:
    """monitor_predictions' alert: the day's one message, if its summary has one.

    Runs in the task process right after the monitor task succeeded, so the summary it
    reads is the one that task just wrote in this worker's workspace.
    """
    import json

    from batchserving.core.names import MONITORING_DIR
    from batchserving.registry.workspace import workspace_path

    day = context["task"].env.get("MONITOR_DAY", "")
    path = workspace_path() / MONITORING_DIR / day / "summary.json"
    try:
        message = json.loads(path.read_text(encoding="utf-8")).get("alert")
    except (OSError, ValueError) as exc:
        log.warning("monitoring alert not sent: %s unreadable (%s)", path, type(exc).__name__)
        return
    if message:
        post_alert("{% raw %}" + str(message)[:3000] + "{% endraw %}", context)
