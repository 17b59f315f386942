"""Slack alerts for every DAG, through the Slack provider's webhook notifier.

Connection ``my_webhook`` (type ``slackwebhook``, the webhook URL as password) is read
when an alert is sent, never when a DAG file is parsed. A missing connection or a
Slack outage is logged as a warning and never changes the task's outcome; each
attempt is bounded by ``SLACK_TIMEOUT_SECONDS``.

The alerts are plain callbacks, passed in a list (``[failure_alert]``,
``[summary_alert(task_id)]``): the notifier is built when an alert is sent, so a DAG
parse creates no notifier at all, and a list spares Airflow's check of a lone callback
against ``Collection`` (which, for a class the parsing process has not met before, walks
every registered collection class at each parse).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

SLACK_CONN_ID = "my_webhook"
SLACK_TIMEOUT_SECONDS = 10

FAILURE_TEXT = (
    ":red_circle: Task failed: dag `{{ ti.dag_id }}`, task `{{ ti.task_id }}`, "
    "logical date {{ dag_run.logical_date or dag_run.run_after }}, try {{ ti.try_number }}.\n"
    "Log: {{ ti.log_url }}"
)

# Exception texts from HTTP clients may quote the webhook URL, which is the secret.
# (A pattern string, not re.compile: compiling at import would cost every DAG parse.)
URL_PATTERN = r"https?://\S+"


def post_alert(text: str, context: Any) -> None:
    """Render ``text`` (Jinja, with the task's context) and post it; never raise.

    The Slack provider's notifier renders and sends it; a fresh one per alert, so a
    process that runs several tasks (``dag.test()``) renders each alert from its template.
    """
    import logging

    from airflow.exceptions import AirflowNotFoundException
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.sdk import BaseHook

    log = logging.getLogger(__name__)
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
        reason = re.sub(URL_PATTERN, "<webhook>", str(exc))[:300]
        log.warning("Slack alert not sent (%s: %s)", type(exc).__name__, reason)
    else:
        log.info("Slack alert sent through connection %r", SLACK_CONN_ID)


def failure_alert(context: Any) -> None:
    """The task-level failure alert every DAG puts in its ``default_args``."""
    post_alert(FAILURE_TEXT, context)


def summary_alert(task_id: str) -> Callable[[Any], None]:
    """Success alert whose text is the task's return value (its XCom): one line, no secrets."""
    return functools.partial(post_alert, f"{{{{ ti.xcom_pull(task_ids='{task_id}') }}}}")
