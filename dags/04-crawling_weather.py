"""
### Hourly weather ingestion: `crawling_weather`

Every hour at :45 Asia/Seoul (the HH:30 issuance is out by then): fetch KMA's
ultra-short forecast for Seoul and keep it as a DVC data version.

1. `fetch`: the latest issuance into `output/weather/raw/` (key from connection `kma_api`).
2. `preprocess`: the history and latest tables, incrementally.

By hand: `KMA_SERVICE_KEY=... dvc repro weather/dvc.yaml`. Details: docs/weather.md.
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
