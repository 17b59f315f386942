"""Slack alerts for every DAG, through the Slack provider's webhook notifier.

The DAGs name three callbacks: ``failure_alert`` (every task's, in ``default_args``),
``summary_alert(task_id)`` (a success alert whose text is the ``message`` of the task's
result) and ``monitoring_alert`` (the monitoring day's alert, when its summary has one).
Connection ``my_webhook`` (type ``slackwebhook``, the webhook URL as password)
is read when an alert is sent, never when a DAG file is parsed. A missing connection or a
Slack outage is logged as a warning and never changes the task's outcome; each attempt
is bounded by ``SLACK_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

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
        log.warning(
            "Slack alert not sent: connection %r is not configured "
            "(add it with `airflow connections add %s --conn-type slackwebhook "
            "--conn-password <webhook URL>`)",
            SLACK_CONN_ID,
            SLACK_CONN_ID,
        )
        return
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    notifier = SlackWebhookNotifier(
        slack_webhook_conn_id=SLACK_CONN_ID, text=text, timeout=SLACK_TIMEOUT_SECONDS
    )
    try:
        notifier.render_template_fields(context)
        notifier.notify(context)
    except Exception as exc:  # noqa: BLE001 - an outage must not change the task's outcome
        reason = URL_PATTERN.sub("<webhook>", str(exc))[:300]
        log.warning("Slack alert not sent (%s: %s)", type(exc).__name__, reason)
    else:
        log.info("Slack alert sent through connection %r", SLACK_CONN_ID)


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
