"""Running git in the model repo, and the label that says who is writing.

Every git call of the project goes through ``git()``: errors name the git command that
failed and what git said, with every URL in them redacted and each line cut short (what
a server replies is outside input). The registry's identity (params.yaml ``registry``)
is passed to the process that needs it, never set in this process's environment.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from batchserving.core.excerpt import clip
from batchserving.core.urls import redact_urls

# What ssh says when the server's host key is not one the connection trusts.
HOST_KEY_REFUSED = "Host key verification failed"
HOST_KEY_ADVICE = (
    "the git server's ssh host key is not one that connection model_repo_git trusts (extra "
    "known_hosts): if the server's key was changed on purpose, update known_hosts; if not, "
    "someone may be impersonating the server"
)
LINE_CHARS = 200


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
        reason = last_lines(result.stderr.strip() or result.stdout, 5)
        command = clip(redact_urls(" ".join(args)), LINE_CHARS)
        raise RegistryError(f"git {command} failed: {reason}")
    return result.stdout


def last_lines(text: str, count: int = 3) -> str:
    """Why a command failed: the last ``count`` non-empty lines of its output, on one line.

    URLs are redacted and each line is cut to LINE_CHARS characters; ssh's refusal of a
    host key comes first, with what to do, whatever else the output says.
    """
    lines = [clip(redact_urls(line.strip()), LINE_CHARS) for line in text.splitlines()]
    reason = " | ".join([line for line in lines if line][-count:])
    return f"{HOST_KEY_ADVICE} ({reason})" if HOST_KEY_REFUSED in text else reason


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
