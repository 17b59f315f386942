"""
### Batch inference: `batch_inference`

Every 5 minutes, score a few Iris rows with the deployed model and write them with lineage.

`predict` runs `python -m batchserving.serving.predict --refresh` in this worker's
`MODEL_REPO` (default `.model-repo/`). It first resolves the registry's current `prod`
version from the git server's tags (`MODEL_REPO_URL`; on one machine the workspace's own)
and, when `output/serving/` does not hold it, fetches that model by md5 from the DVC
remote into it, verified and switched atomically. It then loads only `output/serving/`
(`model.json` and the model it names, checked by md5), never the training workspace, so
it does not need pool `model_repo` or the repo lock. The server out of reach: it serves
the cached version and says so in the log. It draws `inference.n_samples` rows seeded
from the run's logical date and writes
`output/predictions/<YYYY-MM-DD>/<YYYY-MM-DDTHH-MM-SSZ>.csv` (UTC) atomically, one row per
sample: the features, `predicted_class`, `probability`, `model_version`, `model_commit`,
`run_id`. Re-running a run rewrites the same file with the same content.

**Large batch**: trigger with run conf `{"input_path": "data/big.parquet"}` (CSV or
Parquet, a relative path inside the model repo) and optionally `"output_path"` (`.csv` or
`.parquet` under `output/predictions/`; default the scheduled file's path). Any other
key, an absolute path, `..` or a symlink leading out is refused before anything is read
or created. The file is streamed in chunks with the same columns (extra input columns are
kept).

Nothing in prod yet ⇒ the task is **skipped** (exit 99) and its log says to run
`model_selection` first; no alert. Server out of reach with nothing cached, a broken or
unloadable deployment, bad params or a bad input file ⇒ the task fails with the reason in
its log and a Slack alert (`my_webhook`).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG
from batchserving_dags.alerts import failure_alert
from batchserving_dags.assets import PREDICTIONS, PROD_DEPLOYMENT, predictions_event
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
    schedule="*/5 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=1,
    tags=["inference", "serving"],
    doc_md=__doc__,
    # A scheduled run scores a few rows in seconds; a large batch (run conf) gets longer.
    dagrun_timeout=timedelta(minutes=45),
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
        # Consumes the prod deployment (the schedule stays every 5 minutes); produces
        # the predictions file, its event naming the model version that scored it.
        inlets=[PROD_DEPLOYMENT],
        outlets=[PREDICTIONS],
        post_execute=predictions_event,
    )
