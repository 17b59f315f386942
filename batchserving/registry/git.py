"""Running git and dvc for the model repo: one runner, one error summary, the writer's label.

Every git and dvc subprocess of the project goes through ``run_tool()`` (git through its
shorthand ``git()``): it runs the tool installed beside this interpreter (its bin dir
first on PATH, so ``dvc``, and the ``python`` that DVC stages call, are the project's),
and a failure raises one error naming the command and what the tool said, with every URL
in it redacted and each line cut short (what a server replies is outside input). The
registry's identity (params.yaml ``registry``) is passed to the process that needs it,
never set in this process's environment.

Every network call of theirs is bounded (``NETWORK_BOUNDS``, ``SSH_BOUNDS``): a git or
object-store server that stops answering fails the command within about two minutes,
naming the server, and Airflow retries the task.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
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
LINE_CHARS = 300
# git's advice after a failed fetch or push, two lines that would push ssh's own message
# (the reason: a timeout, a refused connection, a host key) out of the summary.
GIT_BOILERPLATE = frozenset(
    {"Please make sure you have the correct access rights", "and the repository exists."}
)
SUMMARY_LINES = 5
# Of a command whose output is passed on as it comes (a stage's log), the last lines kept
# for its error line, each read in pieces of at most this many characters.
TAIL_LINES = 20
TAIL_PIECE_CHARS = 4096
# A server that stops answering must fail the command, not hang it until the task's
# execution_timeout. git over https: under 1 KB/s for 60 s aborts. S3 (DVC's s3fs): s3fs
# retries each request 5 times itself, so botocore's own retries (5 more per try) only
# multiply a hung server's wait; the remote's read_timeout bounds each try
# (``batchserving.registry.workspace``). Set in the environment, they win.
NETWORK_BOUNDS = {
    "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
    "GIT_HTTP_LOW_SPEED_TIME": "60",
    "AWS_MAX_ATTEMPTS": "1",
}
# git over ssh (the options of the GIT_SSH_COMMAND a task gets): 30 s to connect, and a
# server silent for four keep-alives 15 s apart ends the connection.
SSH_BOUNDS = (
    "-o ConnectTimeout=30",
    "-o ServerAliveInterval=15",
    "-o ServerAliveCountMax=4",
)


class RegistryError(RuntimeError):
    """The repo is not in a state that can be committed, registered or published."""


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus ``extra``, with this interpreter's bin dir first on
    PATH and the ``NETWORK_BOUNDS`` where the environment sets none."""
    env = {**NETWORK_BOUNDS, **os.environ, **(extra or {})}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def last_lines(text: str, count: int = 3) -> str:
    """Why a command failed: the last ``count`` non-empty lines of its output, on one line.

    URLs are redacted, each line is cut to LINE_CHARS characters and git's boilerplate
    advice dropped; ssh's refusal of a host key comes first, with what to do, whatever
    else the output says.
    """
    lines = [clip(redact_urls(line.strip()), LINE_CHARS) for line in text.splitlines()]
    reason = " | ".join([line for line in lines if line and line not in GIT_BOILERPLATE][-count:])
    return f"{HOST_KEY_ADVICE} ({reason})" if HOST_KEY_REFUSED in text else reason


def check_result(
    result: subprocess.CompletedProcess,
    what: str,
    error: type[RegistryError] = RegistryError,
    advice: str = "",
) -> None:
    """Raise ``error`` "WHAT failed: WHY[; ADVICE]" if the command ``result`` failed."""
    if result.returncode != 0:
        reason = last_lines((result.stderr or "").strip() or result.stdout or "", SUMMARY_LINES)
        raise error(f"{what} failed: {reason}" + (f"; {advice}" if advice else ""))


def passed_on(
    args: Sequence[str], cwd: Path | None, env: Mapping[str, str]
) -> subprocess.CompletedProcess:
    """Run ``args`` with its output passed on to this process's as it comes (a stage's log);
    the result's ``stderr`` is only its last ``TAIL_LINES``, so memory is bounded whatever
    the command writes."""
    process = subprocess.Popen(
        list(args), cwd=cwd, stderr=subprocess.PIPE, text=True, errors="replace", env=env
    )
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    assert process.stderr is not None
    with process.stderr:
        while piece := process.stderr.readline(TAIL_PIECE_CHARS):
            sys.stderr.write(piece)
            tail.append(piece if piece.endswith("\n") else piece + "\n")
    sys.stderr.flush()
    return subprocess.CompletedProcess(list(args), process.wait(), None, "".join(tail))


def run_tool(
    args: Sequence[str],
    cwd: Path | None,
    *,
    what: str = "",
    env: Mapping[str, str] | None = None,
    check: bool = True,
    capture: bool = True,
    error: type[RegistryError] = RegistryError,
    advice: str = "",
) -> subprocess.CompletedProcess:
    """Run ``args`` in ``cwd``; return the finished process (text output, if ``capture``).

    ``env`` adds to this process's environment (``tool_env``). With ``check``, a failure
    raises ``error`` naming ``what`` (by default the command line, redacted and clipped);
    without ``capture`` the output goes to this process's own as it comes (a stage's log)
    and ``stderr`` keeps only its last lines, for the error (``passed_on``).
    """
    if capture:
        result = subprocess.run(
            list(args), cwd=cwd, capture_output=True, text=True, check=False, env=tool_env(env)
        )
    else:
        result = passed_on(args, cwd, tool_env(env))
    if check:
        check_result(result, what or clip(redact_urls(" ".join(args)), LINE_CHARS), error, advice)
    return result


def git(repo: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None) -> str:
    """Run git in ``repo``; return stdout. ``env`` adds to this process's environment."""
    return run_tool(["git", *args], repo, check=check, env=env).stdout


def show(repo: Path, revision: str, path: str) -> str | None:
    """The text of ``path`` at ``revision``, or None if it has no such file."""
    result = run_tool(["git", "show", f"{revision}:{path}"], repo, check=False)
    return result.stdout if result.returncode == 0 else None


def run_label() -> str:
    """Who is writing: the Airflow DAG run (from the task's environment) or a person."""
    dag_id = os.environ.get("AIRFLOW_CTX_DAG_ID")
    run_id = os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")
    return f"{dag_id} run {run_id}" if dag_id and run_id else "manual run"
