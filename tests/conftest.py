"""Shared fixtures: a private Airflow home, a temporary model repo, a fake Slack receiver.

Tests never touch the checkout's git history: every test that writes a model repo gets
a fresh git repository made from the project's working tree (``model_repo``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchserving import DAGS_FOLDER, PROJECT_ROOT
from scripts.airflow_settings import local_env


def pytest_configure(config: pytest.Config) -> None:
    """Point Airflow at a private home before any test imports it (it reads config on import),
    configured as every Airflow of the project is (``scripts.airflow_settings``)."""
    home = Path(tempfile.mkdtemp(prefix="airflow-home-"))
    os.environ.update(local_env(home, os.environ))
    os.environ.pop("MODEL_REPO", None)
    os.environ.pop("AIRFLOW_CONN_MY_WEBHOOK", None)
    config._airflow_home = home  # type: ignore[attr-defined]


# tests/<group>/... gets the marker of its group, so `pytest -m unit` etc. select by folder.
GROUP_MARKERS = {
    "unit": "unit",
    "dags": "dag",
    "integration": "integration",
    "e2e": "e2e",
    "cluster": "cluster",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = Path(item.path).relative_to(PROJECT_ROOT / "tests").parts[0]
        if group in GROUP_MARKERS:
            item.add_marker(GROUP_MARKERS[group])


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(getattr(config, "_airflow_home", ""), ignore_errors=True)


def run(cmd: list[str], cwd: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output if it fails."""
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


def locked_task(
    repo: Path, *command: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """A task's command in workspace ``repo``, as the DAG tasks run it (writers take the lock)."""
    result = subprocess.run(
        list(command),
        cwd=PROJECT_ROOT,
        env={**os.environ, "MODEL_REPO": str(repo), **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


def last_line(output: str) -> str:
    """What Airflow keeps as a command's XCom: its last output line ('' if none)."""
    lines = output.strip().splitlines()
    return lines[-1] if lines else ""


def task_result(output: str) -> dict:
    """The result object a task command ends its output with (its XCom)."""
    from batchserving.core.results import read_result

    return read_result(last_line(output), "the command")


# The promote task's command; the compare task's XCom follows it.
PROMOTE = ("python", "-m", "batchserving.selection.promote", "promote", "--comparison-json")


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; return its output, failing the test if git fails."""
    return run(["git", *args], cwd=repo).stdout


def set_params(repo: Path, section: str, **values: object) -> None:
    """Set ``section.key = value`` in the repo's params.yaml, as a person editing it would."""
    import yaml

    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """An initialised metadata DB with the project's pool, made as `make setup` makes it."""
    run(["airflow", "db", "migrate"])
    run([sys.executable, "-m", "batchserving_dags"], cwd=DAGS_FOLDER)


def tree_digest(root: Path) -> dict[str, str]:
    """Every file below ``root`` (relative path) -> its sha256; {} if ``root`` is absent.

    Two equal digests prove that a failed or killed run left stored data byte-identical.
    """
    if not root.is_dir():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def snapshot_project(dest: Path) -> Path:
    """A fresh git repo at ``dest`` holding the project's working tree (tracked + new files)."""
    listing = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT_ROOT
    )
    for rel in filter(None, listing.stdout.split("\0")):
        src = PROJECT_ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    ident = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    run(["git", "init", "-q", "-b", "main"], cwd=dest)
    run(["git", "add", "-A"], cwd=dest)
    run(["git", *ident, "commit", "-q", "-m", "Project snapshot"], cwd=dest)
    return dest


@pytest.fixture
def model_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary model repo (never the checkout), exported as MODEL_REPO."""
    repo = snapshot_project(tmp_path / "model-repo")
    monkeypatch.setenv("MODEL_REPO", str(repo))
    return repo


@pytest.fixture
def promoted_repo(model_repo: Path) -> Path:
    """``model_repo`` with v0.0.1 registered, in prod and deployed, through the task commands."""
    python = ("python", "-m")
    locked_task(model_repo, *python, "batchserving.registry.publish", "evaluate")
    locked_task(model_repo, *python, "batchserving.registry.register")
    compared = locked_task(model_repo, *python, "batchserving.selection.compare").stdout
    locked_task(model_repo, *PROMOTE, last_line(compared))
    assert "iris-model#prod#1" in git(model_repo, "tag", "--list").split()
    return model_repo


@pytest.fixture
def slack_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """A local Slack webhook receiver, configured as Airflow connection ``my_webhook``."""
    from tests.fakes.slack import SlackReceiver

    with SlackReceiver() as receiver:
        conn = {"conn_type": "slackwebhook", "password": receiver.url}
        monkeypatch.setenv("AIRFLOW_CONN_MY_WEBHOOK", json.dumps(conn))
        yield receiver
