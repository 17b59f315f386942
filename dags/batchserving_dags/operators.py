"""The project's task types: its commands with its interpreter, credentials and pool."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

from airflow.providers.standard.hooks.subprocess import SubprocessHook, SubprocessResult
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk.exceptions import AirflowException

from batchserving_dags.assets import MODEL_VERSIONS, model_version_event
from batchserving_dags.pool import POOL

PYTHON = '"$PROJECT_PYTHON"'
# A command's last line is outside input (a server's reply may end up there): bounded.
REASON_CHARS = 500


class _LastResultHook(SubprocessHook):
    """Airflow's SubprocessHook, keeping the last command's result for the error line."""

    last_result: SubprocessResult | None = None

    def run_command(self, *args, **kwargs) -> SubprocessResult:
        self.last_result = super().run_command(*args, **kwargs)
        return self.last_result


def failure_line(task_id: str, result: SubprocessResult) -> str:
    """The task's error: which command failed and why, in the command's own last line (the
    project's commands end a failure with one line saying what went wrong and what to do)."""
    from batchserving.core.excerpt import clip
    from batchserving.core.urls import redact_urls

    reason = clip(redact_urls(result.output.strip()), REASON_CHARS) or "(no output)"
    return f"{task_id}: the command failed (exit code {result.exit_code}): {reason}"


class ProjectBashOperator(BashOperator):
    """A BashOperator for the project's commands: its interpreter, the registry's credentials.

    ``$PROJECT_PYTHON`` is this task process's interpreter, so a login shell's ``python``
    on PATH (pyenv shims under Celery, say) never runs our code; the git server's and the
    DVC remote's credentials (``credentials``) are added to the command's environment
    only, with any file they need in a temp dir removed when the task ends. Commands run
    in the project's root unless ``cwd`` says otherwise. ``MODEL_REPO`` (the worker's
    environment) is read by the command, when the task runs. A failure's error line
    carries the command's own last line (``failure_line``), not only its exit code.
    """

    @cached_property
    def subprocess_hook(self) -> _LastResultHook:
        return _LastResultHook()

    def execute(self, context):
        import tempfile

        from batchserving import PROJECT_ROOT

        self.cwd = self.cwd or str(PROJECT_ROOT)
        with tempfile.TemporaryDirectory(prefix="task-credentials-") as tmp:
            self._credentials_dir = tmp
            try:
                return super().execute(context)
            except AirflowException:
                result = self.subprocess_hook.last_result
                failed = result and result.exit_code not in (0, *self.skip_on_exit_code)
                if not failed:
                    raise  # a skip, or an error before the command ran
                raise AirflowException(failure_line(self.task_id, result)) from None

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
        skip_on_exit_code=(),  # no exit code means "skipped" (BashOperator's default: 99)
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
