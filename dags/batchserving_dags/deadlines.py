"""The DAGs' deadline alerts: a run that is not done in time is reported once to Slack.

Airflow's ``DeadlineAlert`` (3.1+): the scheduler notices a run past its deadline and
queues the callback; the triggerer runs it (``alerts.deadline_alert``, connection
``my_webhook``). A deadline only alerts: the run goes on, and its outcome is its own.

``airflow dags test`` (``make run``, and ``dag.test()`` in the integration tests) cannot
run a DAG that has a deadline in Airflow 3.3.2: the run succeeds, then the command crashes
on the deadline (apache/airflow#73428). ``BATCHSERVING_DEADLINES=off`` in the parsing
process's environment leaves the alerts out; ``make run`` sets it, the DAG processor never
does.

The values are here, and only here: DAG-level operating limits, like the DAGs' timeouts,
not tunables of the model (``params.yaml``). Each can be changed through the environment
of the DAG processor (a shorter one in the tests); a bad value is a clear import error.

- ``batch_inference``: done within ``BATCH_INFERENCE_DONE_WITHIN`` of being queued (it is
  due every 5 minutes and takes seconds; ``BATCHSERVING_BATCH_INFERENCE_DEADLINE_SECONDS``).
- ``model_selection``: done by ``MODEL_SELECTION_DONE_BY`` Korean time on the day of its
  scheduled run, i.e. that long after its logical date (``BATCHSERVING_MODEL_SELECTION_DONE_BY``,
  ``HH:MM``). A run triggered by hand is measured from its logical date in the same way.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

# The triggerer imports the callback by its path. The dags folder is on sys.path only
# where DAG files are parsed or tasks run; the project root (the editable install of
# `make setup`) is on it in every component, so the path starts there.
DEADLINE_CALLBACK = "dags.batchserving_dags.alerts.deadline_alert"
BATCH_INFERENCE_DONE_WITHIN = timedelta(minutes=5)
MODEL_SELECTION_DONE_BY = "02:00"  # Asia/Seoul, the time zone of every schedule
DEADLINES_ENV = "BATCHSERVING_DEADLINES"  # "off": no deadline alerts (airflow dags test)
BATCH_INFERENCE_ENV = "BATCHSERVING_BATCH_INFERENCE_DEADLINE_SECONDS"
MODEL_SELECTION_ENV = "BATCHSERVING_MODEL_SELECTION_DONE_BY"
MAX_SECONDS = 24 * 3600
CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
DAILY_CRON = re.compile(r"(\d{1,2}) (\d{1,2}) \* \* \*")


def _seconds_from_env(name: str, default: timedelta) -> timedelta:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if len(raw) > 8 or not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_SECONDS:
        raise ValueError(f"{name}: give whole seconds from 1 to {MAX_SECONDS}, e.g. 300")
    return timedelta(seconds=int(raw))


def _shown(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def _clock(text: str, what: str) -> timedelta:
    """``HH:MM`` as the time since midnight."""
    match = CLOCK.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{what}: give a time of day as HH:MM, e.g. 02:00")
    return timedelta(hours=int(match[1]), minutes=int(match[2]))


def _wanted() -> bool:
    value = os.environ.get(DEADLINES_ENV, "on")
    if value not in ("on", "off"):
        raise ValueError(f"{DEADLINES_ENV}: give on or off")
    return value == "on"


def batch_inference_deadline() -> list[DeadlineAlert]:
    """Late: not done ``BATCH_INFERENCE_DONE_WITHIN`` after it was queued."""
    if not _wanted():
        return []
    within = _seconds_from_env(BATCH_INFERENCE_ENV, BATCH_INFERENCE_DONE_WITHIN)
    alert = DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=within,
        callback=AsyncCallback(
            DEADLINE_CALLBACK,
            kwargs={"missed": f"not done {_shown(within)} after it was queued"},
        ),
        name="batch_inference_late",
    )
    return [alert]


def done_by_interval(schedule: str, done_by: str) -> timedelta:
    """From a daily cron schedule's start (``M H * * *``) to ``done_by`` (HH:MM), the same
    night or the next day."""
    match = DAILY_CRON.fullmatch(schedule)
    if not match or int(match[1]) > 59 or int(match[2]) > 23:
        raise ValueError(f"schedule {schedule!r}: a done-by deadline needs a daily 'M H * * *'")
    starts = timedelta(hours=int(match[2]), minutes=int(match[1]))
    interval = (_clock(done_by, MODEL_SELECTION_ENV) - starts) % timedelta(days=1)
    return interval or timedelta(days=1)


def model_selection_deadline(schedule: str) -> list[DeadlineAlert]:
    """Not done by ``MODEL_SELECTION_DONE_BY`` (KST) after its daily start ``schedule``."""
    if not _wanted():
        return []
    done_by = os.environ.get(MODEL_SELECTION_ENV, MODEL_SELECTION_DONE_BY)
    interval = done_by_interval(schedule, done_by)  # checks done_by before it is shown
    alert = DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=interval,
        callback=AsyncCallback(
            DEADLINE_CALLBACK, kwargs={"missed": f"not done by {done_by.strip()} Korean time"}
        ),
        name="model_selection_done_by",
    )
    return [alert]
