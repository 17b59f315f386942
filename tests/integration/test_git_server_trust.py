"""The git server is trusted only as far as it proves itself, and a URL never holds a secret.

A real sshd (the cluster launcher's git server, on a free 127.0.0.1 port, in a temp dir,
stopped by pid) serves the model repo. A task's git trusts only the host keys the
connection ``model_repo_git`` names: without ``known_hosts`` the task fails before it
connects, and a server answering with a second host key is refused. A real HTTP server
serves the repo to show that a URL with a token is refused before git sees it: the token
is in no output and no file (``.git/config``, ``.dvc/config.local``).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scripts.cluster.cluster import Cluster
from scripts.processes import (
    answers,
    free_port,
    start_process,
    start_time,
    stop_processes,
    wait_until,
)
from tests.conftest import PROJECT_ROOT, git, run, snapshot_project
from tests.integration.dagrun import run_dag, task_states

PYTHON = sys.executable
LOGICAL_DATE = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)


@pytest.fixture
def ssh_git_server(tmp_path: Path) -> Iterator[Cluster]:
    """The cluster's git server alone: sshd with git-shell, seeded with the working tree."""
    server = Cluster(data=tmp_path / "git-server", source=snapshot_project(tmp_path / "source"))
    # connections() also names a KMA and an S3 endpoint; neither runs here.
    server.kma = ("http://127.0.0.1:9", "unused")
    server.prepare_dirs()
    server.state.load_or_create_secrets()
    for part in ("ssh", "s3"):
        server.state.port(part)
    try:
        server.git_server.start()
        yield server
    finally:
        server.stop()


def change_host_key(server: Cluster) -> None:
    """Restart the server's sshd on the same port with a second host key (an impostor)."""
    server.stop()
    for name in ("host_key", "host_key.pub"):
        (server.git_server.ssh_dir / name).unlink()
    server.git_server.start()


def git_connection(server: Cluster, **extra: str) -> str:
    """The launcher's ``model_repo_git`` connection, its extra changed by ``extra``."""
    conn = dict(server.connections()["model_repo_git"])
    conn["extra"] = {**json.loads(conn["extra"]), **extra}
    return json.dumps({k: v for k, v in conn.items() if v is not None})


def predict_on_new_worker(
    server: Cluster, workspace: Path, connection: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """batch_inference once on a worker whose workspace is still to be cloned; its state."""
    monkeypatch.setenv("MODEL_REPO", str(workspace))
    monkeypatch.setenv("MODEL_REPO_URL", server.git_server.model_repo_url)
    monkeypatch.setenv("AIRFLOW_CONN_MODEL_REPO_GIT", connection)
    return task_states(run_dag("batch_inference", logical_date=LOGICAL_DATE))["predict"]


@pytest.mark.usefixtures("airflow_db")
def test_the_launchers_connection_reaches_the_git_server(
    ssh_git_server: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scripts.cluster fills known_hosts, and with it a task clones over checked ssh."""
    extra = json.loads(ssh_git_server.connections()["model_repo_git"]["extra"])
    assert extra["known_hosts"] == ssh_git_server.git_server.known_hosts
    workspace = tmp_path / "worker"
    state = predict_on_new_worker(
        ssh_git_server, workspace, git_connection(ssh_git_server), monkeypatch
    )
    assert state == "skipped"  # cloned, synced, nothing in prod yet
    assert (
        git(workspace, "remote", "get-url", "origin").strip()
        == ssh_git_server.git_server.model_repo_url
    )


@pytest.mark.usefixtures("airflow_db")
def test_ssh_without_known_hosts_fails_before_connecting(
    ssh_git_server: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture,
) -> None:
    workspace = tmp_path / "worker"
    connection = git_connection(ssh_git_server, known_hosts="")
    change_host_key(ssh_git_server)  # whoever answers: nothing says who the server is
    state = predict_on_new_worker(ssh_git_server, workspace, connection, monkeypatch)
    logs = capfd.readouterr()
    assert state == "failed"
    assert "connection 'model_repo_git' has no 'known_hosts' in its extra" in logs.out + logs.err
    assert not workspace.exists()  # nothing was fetched from the unchecked server


@pytest.mark.usefixtures("airflow_db")
def test_a_git_server_with_a_second_host_key_is_refused(
    ssh_git_server: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture,
) -> None:
    workspace = tmp_path / "worker"
    trusted = git_connection(ssh_git_server)  # the real server's host key
    change_host_key(ssh_git_server)
    state = predict_on_new_worker(ssh_git_server, workspace, trusted, monkeypatch)
    logs = capfd.readouterr().out
    assert state == "failed"
    assert "ssh host key is not one that connection model_repo_git trusts" in logs
    assert "someone may be impersonating the server" in logs
    assert not workspace.exists()


@pytest.fixture
def http_git_server(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server (git's dumb protocol) serving a bare clone of the working tree."""
    root = tmp_path / "http"
    root.mkdir()
    bare = root / "model-repo.git"
    run(["git", "clone", "--quiet", "--bare", str(snapshot_project(tmp_path / "src")), str(bare)])
    run(["git", "update-server-info"], cwd=bare)  # the files the dumb protocol reads
    port = free_port()
    cmd = [PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)]
    proc = start_process(cmd, os.environ, tmp_path / "http.log")
    try:
        wait_until(lambda: answers(port), 20, "the HTTP git server", 0.1)
        yield f"http://127.0.0.1:{port}/model-repo.git"
    finally:
        stop_processes({proc.pid: start_time(proc.pid)}, reap=lambda pid: proc.poll())


def workspace_command(workspace: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -m batchserving.registry.workspace``, as every task starts on a worker."""
    return subprocess.run(
        [PYTHON, "-m", "batchserving.registry.workspace"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "MODEL_REPO": str(workspace), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def files_holding(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_a_model_repo_url_with_a_token_is_refused_and_never_stored(
    http_git_server: str, tmp_path: Path
) -> None:
    token = secrets.token_urlsafe(18)
    workspace = tmp_path / "worker"
    for with_token in (
        http_git_server.replace("http://", f"http://bot:{token}@"),
        http_git_server.replace("http://", f"http://{token}@"),
    ):
        refused = workspace_command(workspace, MODEL_REPO_URL=with_token)
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0
        assert "MODEL_REPO_URL=http://***@127.0.0.1" in output
        assert "carries credentials" in output and "'model_repo_git'" in output
        assert token not in output and "Traceback" not in output
        assert not workspace.exists()
        assert files_holding(tmp_path, token) == []
    # The same server without the token: cloned, so the token was the refusal's reason.
    plain = workspace_command(workspace, MODEL_REPO_URL=http_git_server)
    assert plain.returncode == 0, plain.stderr
    assert git(workspace, "remote", "get-url", "origin").strip() == http_git_server


@pytest.mark.parametrize(
    ("variable", "url", "shown"),
    [
        ("DVC_REMOTE_URL", "s3://AKIAEXAMPLE:{}@model-registry/dvc", "s3://***@model-registry/dvc"),
        ("AWS_ENDPOINT_URL", "http://AKIAEXAMPLE:{}@127.0.0.1:9", "http://***@127.0.0.1:9"),
    ],
)
def test_a_dvc_remote_url_with_a_secret_is_refused_and_never_stored(
    http_git_server: str, tmp_path: Path, variable: str, url: str, shown: str
) -> None:
    secret = secrets.token_urlsafe(24)
    remote = {"DVC_REMOTE_URL": str(tmp_path / "dvc-remote"), variable: url.format(secret)}
    workspace = tmp_path / "worker"
    for attempt in ("new workspace", "existing workspace"):
        refused = workspace_command(workspace, MODEL_REPO_URL=http_git_server, **remote)
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0, attempt
        assert f"{variable}={shown} carries credentials" in output
        assert "'dvc_remote'" in output and secret not in output
        assert files_holding(tmp_path, secret) == [], attempt
        if attempt == "new workspace":
            assert not workspace.exists()
            made = workspace_command(workspace, MODEL_REPO_URL=http_git_server)
            assert made.returncode == 0, made.stderr
