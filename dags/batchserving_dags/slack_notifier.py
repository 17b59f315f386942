"""Slack alerts for every DAG, through the Slack provider's webhook notifier.

Connection ``my_webhook`` (type ``slackwebhook``, the webhook URL as password) is read
when an alert is sent, never when a DAG file is parsed. A missing connection or a
Slack outage is logged as a warning and never changes the task's outcome; each
attempt is bounded by ``timeout`` seconds.
"""

from __future__ import annotations

import copy
import re

from airflow.sdk.bases.notifier import BaseNotifier

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


class SlackAlert(BaseNotifier):
    """Post ``text`` (a Jinja template rendered with the task context) to Slack."""

    template_fields = ("text",)

    def __init__(
        self,
        text: str,
        conn_id: str = SLACK_CONN_ID,
        timeout: int = SLACK_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__()
        self.text = text
        self.conn_id = conn_id
        self.timeout = timeout

    def __call__(self, *args) -> None:
        """Render and send from a copy, so the template stays for the next task and run.

        BaseNotifier renders its template fields in place; one instance sits in every
        task's default_args, and a process that runs several tasks (``dag.test()``)
        would otherwise resend the first rendered text.
        """
        BaseNotifier.__call__(copy.copy(self), *args)

    def notify(self, context) -> None:
        """Send the message; log and swallow every failure (alerts never fail a task)."""
        from airflow.exceptions import AirflowNotFoundException
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
        from airflow.sdk import BaseHook

        try:
            BaseHook.get_connection(self.conn_id)
        except AirflowNotFoundException:
            self.log.warning(
                "Slack alert not sent: connection %r is not configured "
                "(add it with `airflow connections add %s --conn-type slackwebhook "
                "--conn-password <webhook URL>`)",
                self.conn_id,
                self.conn_id,
            )
            return
        try:
            SlackWebhookNotifier(
                slack_webhook_conn_id=self.conn_id, text=self.text, timeout=self.timeout
            ).notify(context)
        except Exception as exc:  # noqa: BLE001 - an outage must not change the task's outcome
            reason = re.sub(URL_PATTERN, "<webhook>", str(exc))[:300]
            self.log.warning("Slack alert not sent (%s: %s)", type(exc).__name__, reason)
        else:
            self.log.info("Slack alert sent through connection %r", self.conn_id)


def failure_alert() -> SlackAlert:
    """The task-level failure alert every DAG puts in its ``default_args``."""
    return SlackAlert(FAILURE_TEXT)
