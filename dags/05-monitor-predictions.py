"""
### Daily monitoring of served predictions: `monitor_predictions`

Daily at 01:00 Asia/Seoul, for the previous KST day: its prediction files against the
training data of the version that served each row (drift: KS per feature, chi-square on
the classes) and their true labels where known (live accuracy), through the monitoring
pipeline (`monitoring/dvc.yaml`): `output/monitoring/<day>/report.html`, DVC metrics and
plots, recorded as a data version. Slack on drift, accuracy under `selection.min_score`
or an unreadable file; a clean day sends nothing.

`make run DAG=monitor_predictions DATE=YYYY-MM-DD` monitors that day. See docs/monitoring.md.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG
from batchserving_dags.alerts import failure_alert, monitoring_alert
from batchserving_dags.assets import MONITORING, PREDICTIONS, monitoring_event
from batchserving_dags.operators import repo_task


def monitored_day(instant) -> str:
    """The KST day a run monitors: the day before its logical date, in Korean time."""
    return pendulum.instance(instant).in_timezone("Asia/Seoul").subtract(days=1).to_date_string()


with DAG(
    dag_id="monitor_predictions",
    schedule="0 1 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=1,
    tags=["monitoring", "drift", "dvc"],
    doc_md=__doc__,
    user_defined_filters={"monitored_day": monitored_day},
    # A day is 1,440 rows in seconds; a day with large batches gets the rest.
    dagrun_timeout=timedelta(hours=2),
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "on_failure_callback": [failure_alert],
    },
) as dag:
    # Records the day as a data version: a writer of the model repo, so in its pool.
    monitor = repo_task(
        "monitor",
        "batchserving.registry.publish --pipeline monitoring --single-item monitor_predictions",
        env={"MONITOR_DAY": "{{ (dag_run.logical_date or dag_run.run_after) | monitored_day }}"},
        execution_timeout=timedelta(minutes=60),
        inlets=[PREDICTIONS],
        outlets=[MONITORING],
        post_execute=monitoring_event,
        on_success_callback=[monitoring_alert],
    )
