"""Credentials of the model repo's git server and DVC remote, handed to one task's command.

Read from Airflow connections when the task runs, never when a DAG file is parsed, and
put only into the environment of the command the task starts (and files in the task's
own temp dir), never into a template field, a log line or a file the worker keeps:

- ``model_repo_git``: ssh (extra ``private_key``, optional ``known_hosts``) through
  ``GIT_SSH_COMMAND`` with a key file in the temp dir, or https (login + password/token)
  through ``GIT_ASKPASS``;
- ``dvc_remote``: object-store keys (login = access key id, password = secret) and the
  endpoint (extra ``endpoint_url``) as the ``AWS_*`` variables DVC's S3 client reads.

A missing connection adds nothing: by hand, the environment (or ssh agent) is used.
``ProjectBashOperator`` (declared in the package) calls ``project_env`` when its task
runs; this module is imported only then.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from batchserving.core.atomic import write_private

GIT_CONN_ID = "model_repo_git"
REMOTE_CONN_ID = "dvc_remote"
ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$MODEL_REPO_GIT_USERNAME" ;;
  *) printf '%s\\n' "$MODEL_REPO_GIT_PASSWORD" ;;
esac
"""


def _connection(conn_id: str) -> Any | None:
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def git_env(tmp: Path) -> dict[str, str]:
    """The git server's credentials as environment variables (and files in ``tmp``)."""
    conn = _connection(GIT_CONN_ID)
    if conn is None:
        return {}
    extra = conn.extra_dejson
    if extra.get("private_key"):
        text = extra["private_key"]
        key = write_private(tmp / "git-key", text if text.endswith("\n") else text + "\n")
        known = tmp / "known_hosts"
        known.write_text(extra.get("known_hosts", ""), encoding="utf-8")
        checking = "yes" if extra.get("known_hosts") else "accept-new"
        options = f"-o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking={checking}"
        command = f"ssh -i {shlex.quote(str(key))} -o UserKnownHostsFile={shlex.quote(str(known))}"
        return {"GIT_SSH_COMMAND": f"{command} {options}"}
    if conn.password:
        askpass = tmp / "git-askpass"
        write_private(askpass, ASKPASS).chmod(0o700)
        return {
            "GIT_ASKPASS": str(askpass),
            "GIT_TERMINAL_PROMPT": "0",
            "MODEL_REPO_GIT_USERNAME": conn.login or "git",
            "MODEL_REPO_GIT_PASSWORD": conn.password,
        }
    return {}


def remote_env() -> dict[str, str]:
    """The DVC remote's keys and endpoint as the variables DVC's S3 client reads."""
    conn = _connection(REMOTE_CONN_ID)
    if conn is None:
        return {}
    env = {}
    if conn.login and conn.password:
        env["AWS_ACCESS_KEY_ID"] = conn.login
        env["AWS_SECRET_ACCESS_KEY"] = conn.password
    endpoint = conn.extra_dejson.get("endpoint_url")
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


def project_env(credentials_dir: str) -> dict[str, str]:
    """What a project command adds to its environment: its interpreter, the credentials.

    ``PROJECT_PYTHON`` is this task process's interpreter; files the credentials need go
    in ``credentials_dir`` (the task's temp dir, removed when the task ends).
    """
    return {"PROJECT_PYTHON": sys.executable, **git_env(Path(credentials_dir)), **remote_env()}
