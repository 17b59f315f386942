"""Tasks that write the model repo: one pool slot, the repo file lock, the project's Python.

``MODEL_REPO`` (environment of the worker) names the git+DVC workspace; it defaults to
this project's root. It is read when the task runs, not when the DAG file is parsed.
"""

from __future__ import annotations

import os

from airflow.providers.standard.operators.bash import BashOperator

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_REPO_POOL = "model_repo"


def repo_task(task_id: str, command: str, **kwargs) -> BashOperator:
    """A BashOperator running ``command`` in the model repo under its lock, in pool ``model_repo``.

    ``python -m stages.locked`` checks MODEL_REPO, waits for the repo lock and runs the
    command there. It is imported from the project root, the task's working directory,
    which is also the model repo when MODEL_REPO is unset.
    """
    return BashOperator(
        task_id=task_id,
        bash_command=f"python -m stages.locked {command}",
        cwd=PROJECT_ROOT,
        pool=MODEL_REPO_POOL,
        **kwargs,
    )
