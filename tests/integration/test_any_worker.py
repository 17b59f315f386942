"""Any task on any worker: workspaces that share only a git server and a DVC remote.

A bare repository is the git server (``MODEL_REPO_URL``), a directory the DVC remote
(``DVC_REMOTE_URL``); every step runs in a workspace of its own, often a brand-new one,
with the XCom value the previous step produced, exactly as a task on another worker does.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from batchserving.core.names import ARTIFACT, WEATHER_LOCK
from batchserving.registry.dvclock import model_hash
from batchserving.weather.fake_kma import FakeKma
from tests.conftest import (
    PROJECT_ROOT,
    PROMOTE,
    git,
    last_line,
    locked_task,
    run,
    set_params,
    snapshot_project,
    task_result,
)
from tests.integration.dagrun import rendered_fields, run_dag, task_states

PYTHON = sys.executable
PERSON = ["-c", "user.name=A Person", "-c", "user.email=person@example.invalid"]


class Cluster:
    """The shared state of a cluster: a git server and a DVC remote, and workspaces of it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        source = snapshot_project(root / "source")
        self.server = root / "server.git"
        run(["git", "clone", "--quiet", "--bare", str(source), str(self.server)])
        self.remote = root / "dvc-remote-shared"
        self.url = self.server.as_uri()

    def env(self, workspace: str, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "MODEL_REPO": str(self.root / workspace),
            "MODEL_REPO_URL": self.url,
            "DVC_REMOTE_URL": str(self.remote),
            **extra,
        }

    def task(self, workspace: str, *command: str, check: bool = True, **extra: str) -> str:
        """A repo-writing task's command in ``workspace``; return its output (last line = XCom)."""
        env = self.env(workspace, **extra)
        result = locked_task(self.root / workspace, PYTHON, "-m", *command, env=env, check=check)
        return result.stdout + result.stderr if not check else result.stdout

    def predict(self, workspace: str, logical_date: str, **extra: str) -> subprocess.Popen:
        return subprocess.run(
            [PYTHON, "-m", "batchserving.serving.predict", "--refresh"]
            + ["--logical-date", logical_date, "--run-id", "test"],
            cwd=PROJECT_ROOT,
            env=self.env(workspace, **extra),
            capture_output=True,
            text=True,
        )

    def tags(self) -> list[str]:
        return sorted(git(self.server, "tag", "--list").split())

    def person_clone(self) -> Path:
        person = self.root / "person"
        if not person.exists():
            run(["git", "clone", "--quiet", self.url, str(person)])
        run(["git", "pull", "--quiet", "--ff-only"], cwd=person)
        return person

    def every_weather_day(self) -> Path:
        """A person's clone with every day of the latest weather version, got as the README
        says (the data tip's weather folder, then ``dvc pull -R weather``)."""
        reader = self.root / "reader"
        run(["git", "clone", "--quiet", self.url, str(reader)])
        run(["git", "fetch", "--quiet", "origin", "data/weather"], cwd=reader)
        run(["sh", "-c", "git archive FETCH_HEAD weather | tar -x"], cwd=reader)
        run(["dvc", "remote", "add", "--local", "-d", "shared", str(self.remote)], cwd=reader)
        run(["dvc", "pull", "--quiet", "--recursive", "weather"], cwd=reader)
        return reader

    def person_pushes_params(self, **values: object) -> str:
        """A person edits train params on the server's branch; return the commit."""
        person = self.person_clone()
        set_params(person, "train", **values)
        run(["git", *PERSON, "commit", "--quiet", "-am", f"Try {values}"], cwd=person)
        run(["git", "push", "--quiet", "origin", "HEAD"], cwd=person)
        return git(person, "rev-parse", "HEAD").strip()


def in_remote(remote: Path, md5: str) -> bool:
    return (remote / "files" / "md5" / md5[:2] / md5[2:]).is_file()


# The crawling_weather tasks' command (dags/04-crawling_weather.py), without the stage.
PUBLISH_WEATHER = ("batchserving.registry.publish", "--pipeline", "weather", "--single-item")


def server_lock(cluster: Cluster, ref: str = "HEAD", lock: str = "dvc.lock") -> dict:
    return yaml.safe_load(git(cluster.server, "show", f"{ref}:{lock}"))


def published(cluster: Cluster, workspace: str) -> str:
    """The commit the publish step of the model pipeline ends on, run in ``workspace``."""
    return task_result(cluster.task(workspace, "batchserving.registry.publish", "evaluate"))[
        "commit"
    ]


def test_each_step_on_another_fresh_worker(cluster: Cluster) -> None:
    commit = task_result(cluster.task("ws-a", "batchserving.registry.publish", "evaluate"))[
        "commit"
    ]
    assert git(cluster.server, "rev-parse", "HEAD").strip() == commit
    registered = cluster.task("ws-b", "batchserving.registry.register", "--commit", commit)
    assert task_result(registered)["version"] == "v0.0.1" and task_result(registered)["new"]
    comparison = last_line(cluster.task("ws-c", "batchserving.selection.compare"))
    assert json.loads(comparison)["decision"] == "promote"
    promoted = cluster.task("ws-d", *PROMOTE[2:], comparison)
    assert "promoted iris-model v0.0.1 to prod" in task_result(promoted)["message"]
    assert cluster.tags() == [f"{ARTIFACT}#prod#1", f"{ARTIFACT}@v0.0.1"]
    md5 = model_hash(git(cluster.server, "show", f"{commit}:dvc.lock"))
    assert in_remote(cluster.remote, md5)

    # A worker that never saw the promotion serves the version the registry names.
    result = cluster.predict("ws-e", "2026-01-01T00:05:00+00:00")
    assert result.returncode == 0, result.stderr
    assert "now serving iris-model v0.0.1" in result.stdout
    [predictions] = (cluster.root / "ws-e" / "output" / "predictions").glob("*/*.csv")
    assert "v0.0.1" in predictions.read_text().splitlines()[1]

    # The server out of reach: the cached version is served, and the log says so.
    gone = cluster.predict("ws-e", "2026-01-01T00:10:00+00:00", MODEL_REPO_URL="/nonexistent")
    assert gone.returncode == 0, gone.stderr
    said = gone.stdout + gone.stderr
    assert "out of reach" in said and "serving the cached deployment, iris-model v0.0.1" in said
    # ... and with nothing cached the run fails, naming what to check.
    empty = cluster.predict("ws-f", "2026-01-01T00:10:00+00:00", MODEL_REPO_URL="/nonexistent")
    assert empty.returncode != 0


def put_in_prod(cluster: Cluster, workspace: str) -> None:
    """Train, register, compare and promote in ``workspace``: the first version is in prod."""
    commit = published(cluster, workspace)
    cluster.task(workspace, "batchserving.registry.register", "--commit", commit)
    comparison = last_line(cluster.task(workspace, "batchserving.selection.compare"))
    cluster.task(workspace, *PROMOTE[2:], comparison)


def test_the_monitor_on_one_worker_sees_every_workers_predictions(cluster: Cluster) -> None:
    put_in_prod(cluster, "ws-a")
    # Two workers serve 2026-01-02 KST (from 2026-01-01T15:00Z); a third monitors it.
    served = {"ws-g": "2026-01-01T23:05:00+00:00", "ws-h": "2026-01-02T02:10:00+00:00"}
    for workspace, logical_date in served.items():
        result = cluster.predict(workspace, logical_date)
        assert result.returncode == 0, result.stderr
        [name] = task_result(result.stdout)["shared"]
        assert (cluster.remote / "served/predictions" / name).is_file(), name
    # A file that is not the day's (the day after, in the same UTC folder) stays on the remote.
    assert cluster.predict("ws-h", "2026-01-02T15:00:00+00:00").returncode == 0

    cluster.task(
        "ws-i", "batchserving.registry.publish", "--pipeline", "monitoring", "--single-item",
        "monitor_predictions", MONITOR_DAY="2026-01-02",
    )  # fmt: skip
    day_dir = cluster.root / "ws-i" / "output" / "predictions"
    summary = json.loads(
        (cluster.root / "ws-i/output/monitoring/2026-01-02/summary.json").read_text()
    )
    n_samples = yaml.safe_load((cluster.root / "ws-i/params.yaml").read_text())["inference"][
        "n_samples"
    ]
    assert summary["files"] == 2 and summary["rows"] == 2 * n_samples, summary
    assert sorted(p.name for p in day_dir.glob("*/*.csv")) == [
        "2026-01-01T23-05-00Z.csv",
        "2026-01-02T02-10-00Z.csv",
    ]
    # Byte for byte what each worker wrote.
    for workspace, logical_date in served.items():
        name = logical_date[:19].replace(":", "-") + "Z.csv"
        [mine] = (cluster.root / workspace / "output/predictions").glob(f"*/{name}")
        assert (day_dir / mine.parent.name / name).read_bytes() == mine.read_bytes()


def test_weather_builds_on_the_data_another_worker_published(cluster: Cluster) -> None:
    key = "weather-test-key"
    with FakeKma(key=key) as kma:
        weather = {"KMA_SERVICE_KEY": key, "KMA_BASE_URL": kma.base_url}
        first = {**weather, "WEATHER_RUN_AT": "2026-11-25T14:50:00+09:00"}
        cluster.task("ws-d", *PUBLISH_WEATHER, "fetch_weather", **first)
        cluster.task("ws-d2", *PUBLISH_WEATHER, "preprocess_weather")
        stages = server_lock(cluster, "data/weather", lock=WEATHER_LOCK)["stages"]
        assert {"fetch_weather", "preprocess_weather"} <= set(stages)
        later = {**weather, "WEATHER_RUN_AT": "2026-11-25T15:50:00+09:00"}
        cluster.task("ws-e", *PUBLISH_WEATHER, "fetch_weather", **later)
        cluster.task("ws-e2", *PUBLISH_WEATHER, "preprocess_weather")
    import pandas as pd

    history = pd.read_parquet(cluster.root / "ws-e2" / "output" / "weather" / "history")
    assert set(history["baseTime"]) == {"1430", "1530"}  # E's run kept D's issuance


def test_a_persons_push_is_trained_and_a_rejected_push_is_redone(cluster: Cluster) -> None:
    cluster.task("ws-a", "batchserving.registry.publish", "evaluate")  # ws-a exists, then stale
    person_commit = cluster.person_pushes_params(n_estimators=7)
    commit = task_result(cluster.task("ws-a", "batchserving.registry.publish", "evaluate"))[
        "commit"
    ]
    lock = server_lock(cluster, commit)
    assert lock["stages"]["train"]["params"]["params.yaml"]["train.n_estimators"] == 7
    run(["git", "merge-base", "--is-ancestor", person_commit, commit], cwd=cluster.server)

    # Someone publishes between this step's sync and its push: the push is rejected, the
    # step re-syncs and redoes its work on top, and nobody's commit is lost.
    cluster.person_pushes_params(n_estimators=9)
    hook = cluster.root / "ws-a" / ".git" / "hooks" / "post-commit"
    marker = cluster.root / "interposed"
    person = cluster.person_clone()
    hook.write_text(
        "#!/bin/sh\n"
        f"[ -e '{marker}' ] && exit 0\n"
        f"touch '{marker}'\n"
        "unset GIT_DIR GIT_INDEX_FILE GIT_WORK_TREE GIT_PREFIX\n"  # git sets them for hooks
        f"cd '{person}' && echo interposed >> README.md && "
        f"git {shlex.join(PERSON)} commit -qam 'Interposed change' && git push -q origin HEAD\n"
    )
    hook.chmod(0o755)
    output = cluster.task("ws-a", "batchserving.registry.publish", "evaluate")
    assert "someone published first" in output
    interposed = git(person, "rev-parse", "HEAD").strip()
    final = task_result(output)["commit"]
    run(["git", "merge-base", "--is-ancestor", interposed, final], cwd=cluster.server)
    assert git(cluster.server, "rev-parse", "HEAD").strip() == final
    assert (
        server_lock(cluster)["stages"]["train"]["params"]["params.yaml"]["train.n_estimators"] == 9
    )


def test_two_workers_register_at_once(cluster: Cluster) -> None:
    first = published(cluster, "ws-a")
    cluster.person_pushes_params(n_estimators=7)
    second = task_result(cluster.task("ws-b", "batchserving.registry.publish", "evaluate"))[
        "commit"
    ]
    for commits in ((first, second), (first, first)):
        procs = [
            subprocess.Popen(
                [PYTHON, "-m", "batchserving.registry.register", "--commit", commit],
                cwd=PROJECT_ROOT,
                env=cluster.env(workspace),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for workspace, commit in zip(("ws-a", "ws-b"), commits, strict=True)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, out + err
    versions = [t for t in cluster.tags() if "@" in t]
    assert versions == [f"{ARTIFACT}@v0.0.1", f"{ARTIFACT}@v0.0.2"]
    md5s = [model_hash(git(cluster.server, "show", f"{t}:dvc.lock")) for t in versions]
    assert len(set(md5s)) == 2 and all(in_remote(cluster.remote, m) for m in md5s)


def test_tasks_starting_at_once_on_a_new_worker_make_one_workspace(cluster: Cluster) -> None:
    """Four processes find the workspace missing at the same moment: all get the same clone."""
    starters = [
        subprocess.Popen(
            [PYTHON, "-m", "batchserving.registry.workspace"],
            cwd=PROJECT_ROOT,
            env=cluster.env("new-worker"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120) for process in starters]
    assert [p.returncode for p in starters] == [0] * 4, outputs
    workspace = cluster.root / "new-worker"
    assert sum("workspace: cloned" in out for out, _ in outputs) == 1, outputs
    assert git(workspace, "rev-parse", "HEAD") == git(cluster.server, "rev-parse", "HEAD")
    assert not git(workspace, "status", "--porcelain").strip()
    assert sorted(p.name for p in cluster.root.iterdir() if "new-worker" in p.name) == [
        "new-worker"
    ]  # no clone left behind


def test_an_unreachable_server_fails_writers_clearly(cluster: Cluster) -> None:
    cluster.task("ws-a", "batchserving.registry.publish", "evaluate")
    head = git(cluster.root / "ws-a", "rev-parse", "HEAD")
    output = cluster.task(
        "ws-a",
        "batchserving.registry.publish",
        "evaluate",
        check=False,
        MODEL_REPO_URL=str(cluster.root / "gone.git"),
    )
    assert "publish:" in output and "nothing was published" in output
    assert git(cluster.root / "ws-a", "rev-parse", "HEAD") == head
    assert cluster.tags() == []


@pytest.mark.usefixtures("airflow_db")
def test_a_shadowing_python_on_path_changes_nothing(
    model_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    fake = shims / "python"
    fake.write_text("#!/bin/sh\necho 'not the project python' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    dagrun = run_dag("simple_train", logical_date=datetime(2026, 1, 2, tzinfo=UTC))
    assert task_states(dagrun) == {"repro_evaluate": "success", "register_model": "success"}


@pytest.mark.usefixtures("airflow_db")
def test_registry_credentials_reach_no_log_field_or_file(
    model_repo: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    git_key = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{secrets.token_hex(32)}\n-----END"
    remote_secret = secrets.token_urlsafe(24)
    known_hosts = "[127.0.0.1]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKnownHostOfTheGitServer"
    git_extra = {"private_key": git_key, "known_hosts": known_hosts}
    git_conn = {"conn_type": "ssh", "host": "127.0.0.1", "extra": git_extra}
    remote_conn = {
        "conn_type": "aws",
        "login": "AKIA" + secrets.token_hex(8).upper(),
        "password": remote_secret,
        "extra": {"endpoint_url": "http://127.0.0.1:9"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MODEL_REPO_GIT", json.dumps(git_conn))
    monkeypatch.setenv("AIRFLOW_CONN_DVC_REMOTE", json.dumps(remote_conn))
    dagrun = run_dag("simple_train", logical_date=datetime(2026, 1, 3, tzinfo=UTC))
    logs = capfd.readouterr()
    assert task_states(dagrun) == {"repro_evaluate": "success", "register_model": "success"}
    for secret in (git_key.splitlines()[1], remote_secret):
        assert secret not in logs.out + logs.err
        assert secret not in rendered_fields("simple_train")
        for path in model_repo.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
