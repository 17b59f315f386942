"""
### Hourly weather ingestion: `crawling_weather`

Every hour at :45 Asia/Seoul (the HH:30 issuance of KMA's ultra-short forecast is out by
then), fetch the latest forecast for Seoul (grid nx 60, ny 127) and keep it as a DVC data
version.

The two weather stages are a DVC pipeline of their own, `weather/dvc.yaml` (so `dvc repro`
at the repo root never needs a KMA key); by hand: `KMA_SERVICE_KEY=... dvc repro weather/dvc.yaml`.

Each task syncs its workspace with the model repo's server, runs its DVC stage, commits
the new data version (`weather/dvc.lock`) with a message naming this run and publishes it
(`dvc push`, `git push`), so the next task may run on any worker. Nothing changed (a
re-run of the same hour) ⇒ no commit.

1. `fetch`: `dvc repro --single-item weather/dvc.yaml:fetch_weather` with `WEATHER_RUN_AT` =
   this run's logical date (or run_after for a manual run) converted to KST; the stage
   fetches the latest issuance at that instant (stepping back on NO_DATA) into
   `output/weather/raw/<baseDate><baseTime>.json`. The key and base URL come from
   connection `kma_api` (password = key, host = base URL), read when the task runs and
   passed only to the command's environment: never a template field, never logged. No
   `kma_api` connection: the task fails saying how to add it.
2. `preprocess`: `dvc repro --single-item weather/dvc.yaml:preprocess_weather`: the history
   table and the latest table (latest issuance wins), incrementally, from the raw data
   `fetch` published.

Every task writes the model repo: pool `model_repo` and the repo file lock. Re-running a
run fetches the same issuance and leaves the same files. A failed task posts a Slack alert
on connection `my_webhook`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG
from batchserving_dags.alerts import failure_alert
from batchserving_dags.assets import (
    WEATHER_RAW,
    WEATHER_TABLES,
    weather_raw_event,
    weather_tables_event,
)
from batchserving_dags.operators import KmaBashOperator, repo_task


def kst_iso(instant) -> str:
    """An Airflow date (UTC) as ISO 8601 in Korean time, e.g. 2026-11-25T14:45:00+09:00."""
    return pendulum.instance(instant).in_timezone("Asia/Seoul").isoformat()


with DAG(
    dag_id="crawling_weather",
    schedule="45 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=1,
    tags=["weather", "kma", "dvc"],
    doc_md=__doc__,
    user_defined_filters={"kst_iso": kst_iso},
    # Within the hour: a run still going then has hung, and the next hour's run fetches
    # the then-latest issuance anyway.
    dagrun_timeout=timedelta(minutes=55),
    default_args={
        "owner": "data-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "on_failure_callback": [failure_alert],
    },
) as dag:
    fetch = repo_task(
        "fetch",
        "batchserving.registry.publish --pipeline weather --single-item fetch_weather",
        operator=KmaBashOperator,
        env={"WEATHER_RUN_AT": "{{ (dag_run.logical_date or dag_run.run_after) | kst_iso }}"},
        # KMA's own retries, back-off and step-back stay well inside this.
        execution_timeout=timedelta(minutes=10),
        outlets=[WEATHER_RAW],
        post_execute=weather_raw_event,
    )
    # --single-item: fetch_weather is always_changed and must not run again without its key.
    preprocess = repo_task(
        "preprocess",
        "batchserving.registry.publish --pipeline weather --single-item preprocess_weather",
        execution_timeout=timedelta(minutes=5),
        inlets=[WEATHER_RAW],
        outlets=[WEATHER_TABLES],
        post_execute=weather_tables_event,
    )

    fetch >> preprocess
