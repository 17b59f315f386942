"""What the DAG files use when they are parsed: declarations only, in this one module.

The DAG processor parses every DAG file again and again, each time in a fresh child, and
the helpers a file imports are paid at each of those parses (its parent pre-imports only
the ``airflow`` modules the file itself names). So this module holds what a parse needs
and nothing else: the pool, the assets, the project's operators and task factories, and
the callbacks and hooks the tasks name. Whatever runs only when a task runs lives in the
sibling modules, imported by the callback, hook or operator method that needs it:
``asset_events`` (the extras of asset events), ``alerts`` (Slack), ``credentials`` (git
server and DVC remote), ``kma_connection`` (the KMA key) and ``selection`` (what the
comparison decides). One module, not one per concern: each file a parse loads costs it
too (``make bench``, ``dag_parse``).

Named for the project (not ``utils``): the dags folder is on every worker's ``sys.path``.
``python -m batchserving_dags`` (run in the dags folder) creates the pool.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import Asset

# --- The pool of every task that writes the model repo --------------------------------

POOL = "model_repo"
POOL_SLOTS = 1
POOL_DESCRIPTION = "Writers of the model repo (dvc, git, gto): one at a time"

# --- Assets: what the DAGs produce and consume -----------------------------------------
# The URIs use an `x-` scheme (a private one, in Airflow's convention): Airflow then looks
# up no provider's URI normalizer, which would cost every parse.

MODEL_VERSIONS = Asset(name="iris-model", uri="x-model-repo://iris-model/versions")
PROD_DEPLOYMENT = Asset(name="iris-model-prod", uri="x-model-repo://iris-model/prod")
PREDICTIONS = Asset(name="iris-predictions", uri="x-model-repo://output/predictions")
WEATHER_RAW = Asset(name="kma-forecast-raw", uri="x-model-repo://output/weather/raw")
WEATHER_TABLES = Asset(name="kma-forecast-tables", uri="x-model-repo://output/weather/tables")


def _asset_event(name: str):
    """A ``post_execute`` hook yielding what ``asset_events.<name>`` reads after the task.

    A generator function, as Airflow requires of a hook whose ``Metadata`` it collects.
    """

    def hook(context: Any, result: Any):
        from batchserving_dags import asset_events

        yield from getattr(asset_events, name)(context, result)

    hook.__name__ = hook.__qualname__ = name
    return hook


model_version_event = _asset_event("model_version_event")
prod_event = _asset_event("prod_event")
predictions_event = _asset_event("predictions_event")
weather_raw_event = _asset_event("weather_raw_event")
weather_tables_event = _asset_event("weather_tables_event")

# --- Slack alerts ----------------------------------------------------------------------
# Plain callbacks, passed in a list: a lone callback is checked against `Collection`,
# which for a class the parsing process has not met walks every registered collection.


def failure_alert(context: Any) -> None:
    """The task-level failure alert every DAG puts in its ``default_args``."""
    from batchserving_dags.alerts import FAILURE_TEXT, post_alert

    post_alert(FAILURE_TEXT, context)


def _post_summary(task_id: str, context: Any) -> None:
    from batchserving.core.results import read_result
    from batchserving_dags.alerts import post_alert

    message = read_result(context["ti"].xcom_pull(task_ids=task_id), task_id)["message"]
    post_alert("{% raw %}" + str(message) + "{% endraw %}", context)


def summary_alert(task_id: str):
    """Success alert whose text is the ``message`` of the task's result: one line, no secrets."""
    return functools.partial(_post_summary, task_id)


# --- Tasks that run the project's code -------------------------------------------------

PYTHON = '"$PROJECT_PYTHON"'


class ProjectBashOperator(BashOperator):
    """A BashOperator for the project's commands: its interpreter, the registry's credentials.

    ``$PROJECT_PYTHON`` is this task process's interpreter, so a login shell's ``python``
    on PATH (pyenv shims under Celery, say) never runs our code; the git server's and the
    DVC remote's credentials (``credentials``) are added to the command's environment
    only, with any file they need in a temp dir removed when the task ends. Commands run
    in the project's root unless ``cwd`` says otherwise, so a relative path in a run's
    conf means what it means by hand. ``MODEL_REPO`` (the worker's environment) is read by
    the command, when the task runs.
    """

    def execute(self, context):
        import tempfile

        from batchserving import PROJECT_ROOT

        self.cwd = self.cwd or str(PROJECT_ROOT)
        with tempfile.TemporaryDirectory(prefix="task-credentials-") as tmp:
            self._credentials_dir = tmp
            return super().execute(context)

    def get_env(self, context) -> dict:
        from batchserving_dags.credentials import project_env

        return {**super().get_env(context), **project_env(self._credentials_dir)}


class KmaBashOperator(ProjectBashOperator):
    """A project task whose command also gets the KMA key and base URL (``kma_connection``).

    The key is read from connection ``kma_api`` when the task runs and put only into its
    command's environment: never a template field, so never a rendered field in the UI.
    """

    def get_env(self, context) -> dict:
        from batchserving_dags.kma_connection import kma_env

        return {**super().get_env(context), **kma_env(self.log)}


def repo_task(
    task_id: str, command: str, operator: type[BashOperator] = ProjectBashOperator, **kwargs
) -> BashOperator:
    """A task running ``python -m COMMAND``, a writer of the model repo, in the pool.

    The command itself checks MODEL_REPO and waits for the repo's file lock
    (``batchserving.registry.lock``). ``operator`` may be a subclass that adds secrets to
    the environment.
    """
    return operator(
        task_id=task_id,
        bash_command=f"exec {PYTHON} -m {command}",
        pool=POOL,
        append_env=True,  # keep PATH, MODEL_REPO and the rest of the worker's environment
        # No exit code means "skipped" (BashOperator's default is 99). A tuple, not an
        # int: Airflow checks the value against `Container`, and for an int that check
        # walks every registered container class in each parse.
        skip_on_exit_code=(),
        **kwargs,
    )


def update_and_register() -> tuple[BashOperator, BashOperator]:
    """The shared first step of ``simple_train`` and ``model_selection``: two chained tasks.

    ``repro_evaluate`` syncs with the server, brings the DVC pipeline up to date (``dvc
    repro evaluate``, the workspace restored by ``dvc checkout`` if a stage fails), commits
    what changed and publishes it; ``register_model`` tags that commit as a new
    ``iris-model`` version when its model's hash has none, and publishes the tag.
    Both are idempotent, so the two DAGs running at the same minute
    register one version between them, whichever runs first.
    """
    # Timeouts: training Iris takes seconds; sync, pull and push take the rest. A hung
    # command is killed (SIGTERM to its process group) and fails like any failed run.
    repro_evaluate = repo_task(
        "repro_evaluate",
        "batchserving.registry.publish evaluate",
        execution_timeout=timedelta(minutes=20),
    )
    # The commit repro_evaluate published (in its result, the XCom) is the one registered.
    register_model = repo_task(
        "register_model",
        'batchserving.registry.register --published "$PUBLISHED"',
        env={"PUBLISHED": "{{ ti.xcom_pull(task_ids='repro_evaluate') }}"},
        execution_timeout=timedelta(minutes=10),
        outlets=[MODEL_VERSIONS],
        post_execute=model_version_event,
    )
    repro_evaluate >> register_model
    return repro_evaluate, register_model


# --- model_selection's branch ----------------------------------------------------------
# The compare task's result is the comparison, its XCom: the branch, the keep message and
# the promote task read it from there, on whichever worker they run.

COMPARE_TASK = "compare"
PROMOTE_TASK = "promote"
KEEP_TASK = "keep_champion"
# The promote task gets the comparison in its environment (JSON in one variable).
COMPARISON_TEMPLATE = "{{ ti.xcom_pull(task_ids='compare') }}"


def branch_for(ti: Any) -> str:
    """BranchPythonOperator callable: ``promote`` or ``keep_champion``, from the comparison."""
    from batchserving_dags import selection

    return selection.branch_for(ti)


def keep_message(ti: Any) -> dict[str, str]:
    """The result of ``keep_champion``: its Slack text, who stays in prod and why."""
    from batchserving_dags import selection

    return {"message": selection.keep_message(ti)}
