"""Run one DAG once in-process with ``dag.test()``, as `make run DAG=...` does from the CLI."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any
from unittest.mock import patch

from batchserving import DAGS_FOLDER


def load_dag(dag_id: str, retries: int | None = 0) -> Any:
    """Parse the dags folder as the DAG processor does and return one DAG.

    ``retries=0`` (the default here) makes a failing task fail at once instead of
    waiting for its retry delay; pass None to keep the DAG's own retries.
    """
    from airflow.dag_processing.dagbag import BundleDagBag

    # As `make run` parses them: dag.test() cannot run a DAG with a deadline alert
    # (batchserving_dags.deadlines); the e2e tests run the alerts under a real scheduler.
    with patch.dict(os.environ, {"BATCHSERVING_DEADLINES": "off"}):
        bag = BundleDagBag(dag_folder=DAGS_FOLDER, bundle_path=DAGS_FOLDER)
    assert bag.import_errors == {}, bag.import_errors
    dag = bag.dags[dag_id]
    if retries is not None:
        for task in dag.tasks:
            task.retries = retries
    return dag


def run_dag(dag_id: str, logical_date: datetime | None = None, **kwargs: Any) -> Any:
    """Run ``dag_id`` once; return the finished DagRun (its ``state`` and task instances)."""
    return load_dag(dag_id).test(logical_date=logical_date, **kwargs)


def task_states(dagrun: Any) -> dict[str, str]:
    """task_id -> final state of one DAG run."""
    return {ti.task_id: str(ti.state) for ti in dagrun.get_task_instances()}


def task_output(dagrun: Any, task_id: str) -> Any:
    """What a task returned (its ``return_value`` XCom; a BashOperator's last output line)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=dagrun.run_id,
                dag_ids=dagrun.dag_id,
                task_ids=task_id,
                key="return_value",
            )
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def rendered_fields(dag_id: str) -> str:
    """Every rendered template field stored in the metadata DB for ``dag_id``."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_id).all()
        return json.dumps([r.rendered_fields for r in rows], default=str)
