"""Credentials of the model repo's git server and DVC remote, handed to one task's command.

Read from Airflow connections when the task runs, never when a DAG file is parsed, and
put only into the environment of the command the task starts (and files in the task's
own temp dir), never into a template field, a log line or a file the worker keeps:

- ``model_repo_git``: ssh (conn type ``ssh`` or extra ``private_key``; extra ``known_hosts``
  required) through ``GIT_SSH_COMMAND`` with the key and known_hosts files in the temp
  dir, or https (login + password/token) through ``GIT_ASKPASS``. The model repo is code
  that ``dvc repro`` runs, so ssh trusts only the host keys the connection names
  (``StrictHostKeyChecking=yes``, no global known_hosts): an impostor server is refused;
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
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from batchserving.core.atomic import write_private
from batchserving.registry.git import SSH_BOUNDS

GIT_CONN_ID = "model_repo_git"
REMOTE_CONN_ID = "dvc_remote"
# A known_hosts of a few servers is a few KB; the connection's extra is outside input.
MAX_KNOWN_HOSTS_CHARS = 64 * 1024
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
    if conn.conn_type == "ssh" or extra.get("private_key"):
        return {"GIT_SSH_COMMAND": ssh_command(extra, tmp)}
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


def _extra_text(extra: dict[str, Any], field: str) -> str | None:
    """The connection extra's ``field`` as text ending in a newline (None if unset), bounded."""
    value = extra.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_KNOWN_HOSTS_CHARS:
        raise AirflowFailException(
            f"connection {GIT_CONN_ID!r}: extra {field!r} must be text of at most "
            f"{MAX_KNOWN_HOSTS_CHARS} characters"
        )
    return value if value.endswith("\n") else value + "\n"


def ssh_command(extra: dict[str, Any], tmp: Path) -> str:
    """``GIT_SSH_COMMAND`` trusting only the connection's host keys, with its key if any."""
    known_hosts = _extra_text(extra, "known_hosts")
    if known_hosts is None:
        raise AirflowFailException(
            f"connection {GIT_CONN_ID!r} has no 'known_hosts' in its extra: ssh checks the git "
            "server's host key against it. Add the server's known_hosts line (from the "
            "server's admin, or `ssh-keyscan -p PORT HOST` checked against the server)"
        )
    known = write_private(tmp / "known_hosts", known_hosts)
    options = [
        f"-o UserKnownHostsFile={shlex.quote(str(known))}",
        "-o GlobalKnownHostsFile=/dev/null",
        "-o StrictHostKeyChecking=yes",
        "-o BatchMode=yes",
        *SSH_BOUNDS,  # a git server that stops answering fails the command
    ]
    private_key = _extra_text(extra, "private_key")
    if private_key:
        key = write_private(tmp / "git-key", private_key)
        options += [f"-i {shlex.quote(str(key))}", "-o IdentitiesOnly=yes"]
    return " ".join(["ssh", *options])


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
