"""Tasks that run the project's code: its own Python, the model repo, the pool and the lock.

``MODEL_REPO`` (environment of the worker) names the git+DVC workspace; it is read when
the task runs, not when the DAG file is parsed. Every command starts with
``"$PROJECT_PYTHON"``: the interpreter of the environment the project is installed in,
set by the operator in the task process, so a login shell's ``python`` on PATH (pyenv
shims under Celery, say) never runs our code.
"""

from __future__ import annotations

import os

from airflow.providers.standard.operators.bash import BashOperator

from batchserving.core.names import POOL

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = '"$PROJECT_PYTHON"'


class ProjectBashOperator(BashOperator):
    """A BashOperator whose command finds the project's interpreter in ``$PROJECT_PYTHON``."""

    def get_env(self, context) -> dict:
        import sys

        env = super().get_env(context)
        env["PROJECT_PYTHON"] = sys.executable
        return env


def repo_task(
    task_id: str, command: str, operator: type[BashOperator] = ProjectBashOperator, **kwargs
) -> BashOperator:
    """A task running ``python -m COMMAND`` in the model repo under its lock, in the pool.

    ``batchserving.core.lock`` checks MODEL_REPO, waits for the repo lock and runs the
    command there. ``operator`` may be a subclass that adds secrets to the environment.
    """
    return operator(
        task_id=task_id,
        bash_command=f"exec {PYTHON} -m batchserving.core.lock {PYTHON} -m {command}",
        cwd=PROJECT_ROOT,
        pool=POOL,
        append_env=True,  # keep PATH, MODEL_REPO and the rest of the worker's environment
        **kwargs,
    )


def update_and_register() -> tuple[BashOperator, BashOperator]:
    """The shared first step of ``simple_train`` and ``model_selection``: two chained tasks.

    ``repro_evaluate`` brings the DVC pipeline up to date (``dvc repro evaluate``, with the
    workspace restored by ``dvc checkout`` if a stage fails); ``register_model`` commits
    what changed, pushes it, and registers a new ``iris-model`` version when the model's
    hash has none. Both are idempotent, so the two DAGs running at the same minute
    register one version between them, whichever runs first.
    """
    repro_evaluate = repo_task("repro_evaluate", "batchserving.core.repro evaluate")
    register_model = repo_task("register_model", "batchserving.registry.register register")
    repro_evaluate >> register_model
    return repro_evaluate, register_model
