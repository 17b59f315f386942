"""Tasks that write the model repo: one pool slot, the repo file lock, the project's Python.

``MODEL_REPO`` (environment of the worker) names the git+DVC workspace; it defaults to
this project's root. It is read when the task runs, not when the DAG file is parsed.
"""

from __future__ import annotations

import os

from airflow.providers.standard.operators.bash import BashOperator

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_REPO_POOL = "model_repo"


def repo_task(
    task_id: str, command: str, operator: type[BashOperator] = BashOperator, **kwargs
) -> BashOperator:
    """A BashOperator running ``command`` in the model repo under its lock, in pool ``model_repo``.

    ``python -m stages.locked`` checks MODEL_REPO, waits for the repo lock and runs the
    command there. It is imported from the project root, the task's working directory,
    which is also the model repo when MODEL_REPO is unset. ``operator`` may be a
    BashOperator subclass (e.g. one that adds secrets to the command's environment).
    """
    return operator(
        task_id=task_id,
        bash_command=f"python -m stages.locked {command}",
        cwd=PROJECT_ROOT,
        pool=MODEL_REPO_POOL,
        **kwargs,
    )


def update_and_register() -> tuple[BashOperator, BashOperator]:
    """The shared first step of ``simple_train`` and ``model_selection``: two chained tasks.

    ``repro_evaluate`` brings the DVC pipeline up to date (``dvc repro evaluate``, with the
    workspace restored by ``dvc checkout`` if a stage fails: see stages/repro.py);
    ``register_model`` commits what changed, pushes it, and registers a new ``iris-model``
    version when the model's hash has none. Both are idempotent, so the two DAGs running
    at the same minute register one version between them, whichever runs first.
    """
    repro_evaluate = repo_task("repro_evaluate", "python -m stages.repro evaluate")
    register_model = repo_task("register_model", "python -m stages.registry register")
    repro_evaluate >> register_model
    return repro_evaluate, register_model
