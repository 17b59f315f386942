"""
### Periodic training: `simple_train`

Every day at 00:30 Asia/Seoul: bring the DVC training pipeline up to date and register
the result as a model version.

1. `repro_evaluate`: `dvc repro evaluate` (prepare → train → evaluate) in the model
   repo, commit what changed, `dvc push`, `git push`.
2. `register_model`: tag that commit `iris-model@vX.Y.Z` (GTO) when its model is new.

Nothing changed ⇒ no commit, no version. Look with `gto show`, `dvc metrics show`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG
from batchserving_dags.alerts import failure_alert
from batchserving_dags.operators import update_and_register

with DAG(
    dag_id="simple_train",
    schedule="30 0 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=1,
    tags=["training", "dvc", "gto"],
    doc_md=__doc__,
    # Both tasks with their retries fit; a run still going then has hung somewhere.
    dagrun_timeout=timedelta(hours=2),
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "on_failure_callback": [failure_alert],
    },
) as dag:
    repro_evaluate, register_model = update_and_register()
