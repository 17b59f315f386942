"""Slack alerts for every DAG, through the Slack provider's webhook notifier.

The callbacks the DAGs name (``failure_alert``, ``summary_alert(task_id)``) are declared
in the package; they call ``post_alert`` here, in the task process, when an alert is
sent. Connection ``my_webhook`` (type ``slackwebhook``, the webhook URL as password) is
read then, never when a DAG file is parsed. A missing connection or a Slack outage is
logged as a warning and never changes the task's outcome; each attempt is bounded by
``SLACK_TIMEOUT_SECONDS``. Imported only when an alert is sent.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
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
