"""Every DAG file parses cleanly and follows the rules of the house (README "Layout")."""

from __future__ import annotations

import ast
import warnings
from datetime import timedelta

import pytest

from batchserving import DAGS_FOLDER, PROJECT_ROOT
from dags.batchserving_dags.pool import POOL

# dag_id -> cron expression, all in Asia/Seoul .
EXPECTED_SCHEDULES = {
    "simple_train": "30 0 * * *",
    "model_selection": "30 0 * * *",
    "batch_inference": "*/5 * * * *",
    "crawling_weather": "45 * * * *",
    "monitor_predictions": "0 1 * * *",
}
DAG_FILES = sorted(DAGS_FOLDER.glob("*.py"))
# Imports that cost seconds, or do I/O, and belong in stages/ (the rules of the house).
HEAVY_MODULES = {"pandas", "numpy", "sklearn", "dvc", "gto", "requests", "joblib", "pyarrow"}


def cron_of(dag) -> str:
    """The DAG's cron expression, also when assets can trigger it besides the clock."""
    from airflow.sdk import AssetOrTimeSchedule

    if isinstance(dag.schedule, AssetOrTimeSchedule):
        return dag.schedule.timetable.expression
    return dag.schedule


def test_a_promotion_triggers_batch_inference_besides_its_clock(dagbag) -> None:
    """batch_inference runs every 5 minutes (Asia/Seoul) or on an iris-model-prod event."""
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    schedule = dagbag.dags["batch_inference"].schedule
    assert isinstance(schedule, AssetOrTimeSchedule)
    assert isinstance(schedule.timetable, CronTriggerTimetable)
    assert str(schedule.timetable.timezone) == "Asia/Seoul"
    assert [asset.name for asset in schedule.asset_condition.objects] == ["iris-model-prod"]


@pytest.fixture(scope="module")
def dagbag():
    """The dags folder parsed as the DAG processor does (bundle root on sys.path)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = BundleDagBag(dag_folder=DAGS_FOLDER, bundle_path=DAGS_FOLDER)
    bag.caught_warnings = [w for w in caught if str(DAGS_FOLDER) in str(w.filename)]
    return bag


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_no_warnings_from_dag_files(dagbag) -> None:
    assert [f"{w.filename}:{w.lineno}: {w.message}" for w in dagbag.caught_warnings] == []


def test_every_dag_file_defines_a_known_dag(dagbag) -> None:
    assert DAG_FILES, "no DAG files found"
    assert set(dagbag.dag_ids) <= set(EXPECTED_SCHEDULES)
    assert len(dagbag.dag_ids) == len(DAG_FILES)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_no_heavy_imports_at_top_level(path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top_level.add(node.module.split(".")[0])
    assert top_level & HEAVY_MODULES == set()
    assert not {"airflow.operators", "airflow.models"} & {
        n.module for n in tree.body if isinstance(n, ast.ImportFrom)
    }


def test_dag_settings(dagbag) -> None:
    assert dagbag.dags, "no DAGs parsed"
    for dag_id, dag in dagbag.dags.items():
        assert cron_of(dag) == EXPECTED_SCHEDULES[dag_id], dag_id
        assert str(dag.timezone) == "Asia/Seoul", dag_id
        assert dag.start_date.tzinfo is not None, dag_id
        assert dag.catchup is False, dag_id
        assert dag.max_active_runs == 1, dag_id
        assert dag.tags, dag_id
        assert dag.doc_md and dag.doc_md.strip(), dag_id
        # What it does and when; the depth lives in docs/.
        assert len(dag.doc_md.strip().splitlines()) <= 12, dag_id


# Run in a fresh interpreter: which modules a DAG parse adds to what the DAG processor's
# parent has (Airflow and the `airflow.*` modules the DAG files name, pre-imported).
PARSE_IMPORTS = """
import importlib, json, sys
from pathlib import Path
import airflow
from airflow.utils.file import iter_airflow_imports
files = [Path(p) for p in sys.argv[1:]]
for path in files:
    for module in iter_airflow_imports(str(path)):
        importlib.import_module(module)
from airflow.dag_processing.dagbag import BundleDagBag
before = set(sys.modules)
for path in files:
    bag = BundleDagBag(dag_folder=path, bundle_path=path.parent)
    assert bag.dags and not bag.import_errors, (path, bag.import_errors)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


# What a DAG parse may import of ours besides the helpers: the one definition of the names.
PARSE_MAY_IMPORT = {"batchserving", "batchserving.core", "batchserving.core.names"}
# The deadline callback, checked at parse by the path the triggerer imports it by.
PARSE_MAY_IMPORT |= {"dags", "dags.batchserving_dags", "dags.batchserving_dags.alerts"}
# Helpers that read Airflow connections: only a running task imports them.
RUN_TIME_HELPERS = {"batchserving_dags.credentials", "batchserving_dags.kma_connection"}


def test_a_parse_imports_only_the_helpers_and_plain_names() -> None:
    """A parse imports the DAG helpers and nothing heavy or run-time of the project.

    Anything a DAG file's imports pull in is paid at every parse of every file.
    """
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", PARSE_IMPORTS, *map(str, DAG_FILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    added = json.loads(result.stdout.strip().splitlines()[-1])
    others = [
        name
        for name in added
        if not name.startswith(("unusual_prefix_", "airflow."))  # the DAG files, Airflow's own
        and not (name.startswith("batchserving_dags") and name not in RUN_TIME_HELPERS)
        and name not in PARSE_MAY_IMPORT
    ]
    assert others == [], f"a DAG parse imports {others}"


def test_task_defaults(dagbag) -> None:
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            where = f"{dag.dag_id}.{task.task_id}"
            assert task.owner and task.owner != "airflow", where
            assert task.retries >= 1, where
            assert task.retry_delay >= timedelta(seconds=30), where
            assert task.on_failure_callback, f"{where} has no failure alert"


def lock_taking_modules() -> set[str]:
    """The package's modules whose command takes the repo lock (``locked_workspace()``)."""
    package = PROJECT_ROOT / "batchserving"
    return {
        ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
        for path in package.rglob("*.py")
        if "with locked_workspace()" in path.read_text(encoding="utf-8")
    }


def test_repo_writers_run_in_the_pool(dagbag) -> None:
    """Every task whose command takes the repo lock also holds the one-slot pool."""
    modules = lock_taking_modules()
    assert modules, "no command takes the repo lock"
    writers = [
        (dag.dag_id, task)
        for dag in dagbag.dags.values()
        for task in dag.tasks
        if any(f"-m {m} " in f"{getattr(task, 'bash_command', '')} " for m in modules)
    ]
    assert writers, "no task writes the model repo"
    for dag_id, task in writers:
        assert task.pool == POOL, f"{dag_id}.{task.task_id}"


def test_every_task_and_dag_has_a_timeout(dagbag) -> None:
    """Nothing can hang: each task ends by its timeout, each run by the DAG's."""
    for dag in dagbag.dags.values():
        assert dag.dagrun_timeout, f"{dag.dag_id} has no dagrun_timeout"
        for task in dag.tasks:
            where = f"{dag.dag_id}.{task.task_id}"
            assert task.execution_timeout, f"{where} has no execution_timeout"
            assert task.execution_timeout < dag.dagrun_timeout, where


def test_branches_of_model_selection_are_labelled(dagbag) -> None:
    from airflow.sdk import TriggerRule

    dag = dagbag.dags["model_selection"]
    branch = dag.get_task("choose_branch")
    labels = {
        task_id: dag.get_edge_info("choose_branch", task_id).get("label")
        for task_id in branch.downstream_task_ids
    }
    assert set(labels) == {"promote", "keep_champion", "approve_promotion"}
    assert all(labels.values()), labels
    assert dag.get_task("join").trigger_rule == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS


def test_the_approval_step_branches_to_promote_or_keep(dagbag) -> None:
    """approve_promotion is Airflow's HITL branch: Approve → promote, Reject/no answer → keep.

    promote and keep_champion each follow either the branch or the approval, so they run
    when one of the two ran and the other was skipped.
    """
    from airflow.providers.standard.operators.hitl import HITLBranchOperator
    from airflow.sdk import TriggerRule

    dag = dagbag.dags["model_selection"]
    approval = dag.get_task("approve_promotion")
    assert isinstance(approval, HITLBranchOperator)
    assert approval.options_mapping == {"Approve": "promote", "Reject": "keep_champion"}
    assert approval.defaults == ["Reject"]  # what a time-out chooses
    assert approval.pool != POOL  # a person's wait never holds the one writer slot
    labels = {
        task_id: dag.get_edge_info("approve_promotion", task_id).get("label")
        for task_id in approval.downstream_task_ids
    }
    assert set(labels) == {"promote", "keep_champion"} and all(labels.values()), labels
    for task_id in ("promote", "keep_champion"):
        task = dag.get_task(task_id)
        assert task.upstream_task_ids == {"choose_branch", "approve_promotion"}, task_id
        assert task.trigger_rule == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, task_id


def test_a_run_waiting_for_approval_ends_within_its_dagrun_timeout(dagbag) -> None:
    """The longest approval wait params.yaml allows, plus 3 h of tasks, fits the run."""
    from batchserving.core.params import MAX_APPROVAL_MINUTES
    from dags.batchserving_dags.approval import MAX_WAIT

    dag = dagbag.dags["model_selection"]
    assert timedelta(minutes=MAX_APPROVAL_MINUTES) == MAX_WAIT
    assert dag.dagrun_timeout >= MAX_WAIT + timedelta(hours=3)
    assert dag.dagrun_timeout < timedelta(days=1)  # the next day's run is not held up


def test_every_producer_has_an_event_hook_that_runs(dagbag) -> None:
    """Each task with outlets has a post-execute hook Airflow collects ``Metadata`` from."""
    import inspect

    producers = [task for dag in dagbag.dags.values() for task in dag.tasks if task.outlets]
    assert len(producers) == 7, [task.task_id for task in producers]
    for task in producers:
        hook = task._post_execute_hook
        where = f"{task.dag_id}.{task.task_id}"
        assert hook is not None, f"{where} produces an asset event without extras"
        # Airflow collects what a hook yields only from a generator function.
        assert inspect.isgeneratorfunction(hook), where
        assert hook.__module__ == "batchserving_dags.assets", where


def test_monitor_predictions_monitors_the_kst_day_before_its_logical_date(dagbag) -> None:
    """The day to monitor, the assets, the pool and the alert of ``monitor_predictions``."""
    import pendulum

    dag = dagbag.dags["monitor_predictions"]
    [monitor] = dag.tasks
    assert monitor.pool == POOL  # it records the day as a data version: a repo writer
    assert [a.name for a in monitor.inlets] == ["iris-predictions"]
    assert [a.name for a in monitor.outlets] == ["iris-monitoring"]
    assert [c.__name__ for c in monitor.on_success_callback] == ["monitoring_alert"]
    day_of = dag.user_defined_filters["monitored_day"]
    # The scheduled run at 01:00 KST on 3 March (16:00 UTC on 2 March) monitors 2 March;
    # `make run DATE=2026-03-01` passes 2026-03-02T01:00+09:00 and so monitors 1 March.
    assert day_of(pendulum.datetime(2026, 3, 2, 16, 0, tz="UTC")) == "2026-03-02"
    assert day_of(pendulum.datetime(2026, 3, 2, 1, 0, tz="Asia/Seoul")) == "2026-03-01"
    assert "monitored_day" in monitor.env["MONITOR_DAY"]
