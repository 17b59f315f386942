"""Tasks that run the project's code: its own Python, the model repo, the pool and the lock.

``MODEL_REPO`` (environment of the worker) names the git+DVC workspace; it is read when
the task runs, not when the DAG file is parsed. Every command starts with
``"$PROJECT_PYTHON"``: the interpreter of the environment the project is installed in,
set by the operator in the task process, so a login shell's ``python`` on PATH (pyenv
shims under Celery, say) never runs our code.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.bash import BashOperator

from batchserving_dags import POOL, assets

PYTHON = '"$PROJECT_PYTHON"'


class ProjectBashOperator(BashOperator):
    """A BashOperator for the project's commands: its interpreter, the registry's credentials.

    ``$PROJECT_PYTHON`` is this task process's interpreter; the git server's and the DVC
    remote's credentials (``batchserving_dags.credentials``) are added to the command's
    environment only, with any file they need in a temp dir removed when the task ends.
    Commands run in the project's root unless ``cwd`` says otherwise, so a relative path
    in a run's conf means what it means by hand. The project's package is imported only
    here, when the task runs: the DAG parse never pays for it.
    """

    def execute(self, context):
        import tempfile

        from batchserving import PROJECT_ROOT

        self.cwd = self.cwd or str(PROJECT_ROOT)
        with tempfile.TemporaryDirectory(prefix="task-credentials-") as tmp:
            self._credentials_dir = tmp
            return super().execute(context)

    def get_env(self, context) -> dict:
        import sys
        from pathlib import Path

        from batchserving_dags.credentials import git_env, remote_env

        env = super().get_env(context)
        env["PROJECT_PYTHON"] = sys.executable
        env.update(git_env(Path(self._credentials_dir)))
        env.update(remote_env())
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
    # The commit repro_evaluate published (its XCom) is the one registered.
    register_model = repo_task(
        "register_model",
        'batchserving.registry.register --commit "$REGISTER_COMMIT"',
        env={"REGISTER_COMMIT": "{{ ti.xcom_pull(task_ids='repro_evaluate') }}"},
        execution_timeout=timedelta(minutes=10),
        outlets=[assets.MODEL_VERSIONS],
        post_execute=assets.model_version_event,
    )
    repro_evaluate >> register_model
    return repro_evaluate, register_model
