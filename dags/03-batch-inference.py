"""
### Batch inference: `batch_inference`

Every 5 minutes, and at once on each `iris-model-prod` event (a promotion): score
`inference.n_samples` Iris rows with the `prod` model, seeded by the run's date (the
logical date; for an asset-triggered run, which has none, its `run_after`), into
`output/predictions/<date>/<time>Z.csv`, each row with its model version, commit and run
id. A re-run writes the same file.

Large batch: trigger with run conf `{"input_path": "data/big.parquet"}` (a path inside the
model repo; optional `output_path` under `output/predictions/`).

Nothing in prod yet ⇒ skipped. Details: docs/architecture.md.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable
from batchserving_dags.alerts import failure_alert
from batchserving_dags.assets import PREDICTIONS, PROD_DEPLOYMENT, predictions_event
from batchserving_dags.deadlines import batch_inference_deadline
from batchserving_dags.operators import PYTHON, ProjectBashOperator

# Run values reach the command through the environment, never pasted into the shell text:
# a run id or a conf path with quotes or `;` in it stays one argument. The run conf goes
# whole, as JSON, to `--run-conf`, which checks its keys and confines its paths.
PREDICT_COMMAND = (
    f"exec {PYTHON} -m batchserving.serving.predict --refresh "
    '--logical-date "$PREDICT_LOGICAL_DATE" --run-id "$PREDICT_RUN_ID" '
    '--run-conf "$PREDICT_RUN_CONF"'
)

with DAG(
    dag_id="batch_inference",
    # A promotion is served at once, not at the next 5-minute tick.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="Asia/Seoul"),
        assets=[PROD_DEPLOYMENT],
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=1,
    tags=["inference", "serving"],
    doc_md=__doc__,
    # A scheduled run scores a few rows in seconds; a large batch (run conf) gets longer.
    dagrun_timeout=timedelta(minutes=45),
    # Slack once when a run is late (batchserving_dags.deadlines); the run goes on.
    deadline=batch_inference_deadline(),
    default_args={
        "owner": "ml-platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": [failure_alert],
    },
) as dag:
    predict = ProjectBashOperator(
        task_id="predict",
        bash_command=PREDICT_COMMAND,
        env={
            "PREDICT_LOGICAL_DATE": "{{ (dag_run.logical_date or dag_run.run_after).isoformat() }}",
            "PREDICT_RUN_ID": "{{ run_id }}",
            "PREDICT_RUN_CONF": "{{ (dag_run.conf or {}) | tojson }}",
        },
        append_env=True,  # keep PATH, MODEL_REPO and the rest of the worker's environment
        skip_on_exit_code=(99,),  # batchserving.serving.predict: nothing deployed yet
        execution_timeout=timedelta(minutes=20),
        # Consumes the prod deployment (its events also schedule the DAG); produces the
        # predictions file, its event naming the model version that scored it.
        inlets=[PROD_DEPLOYMENT],
        outlets=[PREDICTIONS],
        post_execute=predictions_event,
    )
