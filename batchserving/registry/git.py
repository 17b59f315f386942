"""Running git in the model repo, and the label that says who is writing.

Every git call of the project goes through ``git()``: errors name the git command that
failed and what git said. The registry's identity (params.yaml ``registry``) is passed
to the process that needs it, never set in this process's environment.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path


class RegistryError(RuntimeError):
    """The repo is not in a state that can be committed, registered or published."""


def git(repo: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None) -> str:
    """Run git in ``repo``; return stdout. ``env`` adds to this process's environment."""
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env} if env else None,
    )
    if check and result.returncode != 0:
        reason = result.stderr.strip() or result.stdout.strip()
        raise RegistryError(f"git {' '.join(args)} failed: {reason}")
    return result.stdout


def last_lines(text: str, count: int = 3) -> str:
    """The last ``count`` non-empty lines of a command's output, on one line: why it failed."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def show(repo: Path, revision: str, path: str) -> str | None:
    """The text of ``path`` at ``revision``, or None if it has no such file."""
    result = subprocess.run(
        ["git", "show", f"{revision}:{path}"], cwd=repo, capture_output=True, text=True
    )
    return result.stdout if result.returncode == 0 else None


def run_label() -> str:
    """Who is writing: the Airflow DAG run (from the task's environment) or a person."""
    dag_id = os.environ.get("AIRFLOW_CTX_DAG_ID")
    run_id = os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")
    return f"{dag_id} run {run_id}" if dag_id and run_id else "manual run"
