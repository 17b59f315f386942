"""``simple_train`` through Airflow's ``dag.test()`` on a temporary model repo."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from batchserving import PROJECT_ROOT
from batchserving.core.results import read_result
from tests.conftest import run, set_params
from tests.integration.dagrun import load_dag, run_dag, task_output, task_states

pytestmark = pytest.mark.usefixtures("airflow_db")


def tags(repo: Path) -> list[str]:
    return run(["git", "tag", "--list", "iris-model@*"], cwd=repo).stdout.split()


def head(repo: Path) -> str:
    return run(["git", "rev-parse", "HEAD"], cwd=repo).stdout.strip()


def test_versions_follow_the_model(model_repo: Path) -> None:
    # A clone whose committed pipeline state is current but has no version yet (its tags
    # were never pushed) gets one, on that very commit: nothing to commit.
    run(["dvc", "repro", "-q", "evaluate"], cwd=model_repo)
    ident = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    run(["git", *ident, "commit", "-q", "--allow-empty", "-am", "Pipeline state"], cwd=model_repo)
    snapshot = head(model_repo)
    first = run_dag("simple_train")
    assert first.state == "success", task_states(first)
    assert tags(model_repo) == ["iris-model@v0.0.1"]
    assert head(model_repo) == snapshot
    registered = read_result(task_output(first, "register_model"), "register_model")
    assert registered["version"] == "v0.0.1" and registered["new"] is True
    assert registered["message"].startswith("registered iris-model@v0.0.1")

    # Nothing changed: no commit, no version, and the task's log says so.
    second = run_dag("simple_train")
    assert second.state == "success", task_states(second)
    unchanged = read_result(task_output(second, "register_model"), "register_model")
    assert unchanged["version"] == "v0.0.1" and unchanged["new"] is False
    assert "no new version" in unchanged["message"]
    assert tags(model_repo) == ["iris-model@v0.0.1"]
    assert head(model_repo) == snapshot

    # A params change trains a different model: a commit naming the run, and the next version.
    set_params(model_repo, "train", n_estimators=7)
    third = run_dag("simple_train")
    assert third.state == "success", task_states(third)
    assert tags(model_repo) == ["iris-model@v0.0.1", "iris-model@v0.0.2"]
    message = run(["git", "log", "-1", "--format=%an <%ae>%n%B"], cwd=model_repo).stdout
    assert "simple_train run manual__" in message
    assert "Airflow model registry <airflow@model-registry.invalid>" in message
    assert "params.yaml" in message and "dvc.lock" in message
    assert run(["git", "status", "--porcelain"], cwd=model_repo).stdout == ""

    diff = run(
        ["dvc", "metrics", "diff", "iris-model@v0.0.1", "iris-model@v0.0.2", "--json"],
        cwd=model_repo,
    )
    changed = json.loads(diff.stdout)["metrics.json"]
    assert changed, "dvc metrics diff shows no change between the two versions"
    assert any(entry.get("diff") for entry in changed.values())


def test_bad_params_fail_with_one_alert_and_change_nothing(
    model_repo: Path, slack_receiver
) -> None:
    run(["dvc", "repro", "-q", "evaluate"], cwd=model_repo)  # a model in the workspace
    model = model_repo / "output/model/model.joblib"
    model_before, head_before = model.read_bytes(), head(model_repo)
    set_params(model_repo, "train", n_estimators=-3)

    dagrun = run_dag("simple_train")

    assert dagrun.state == "failed"
    assert task_states(dagrun)["repro_evaluate"] == "failed"
    assert tags(model_repo) == []
    assert head(model_repo) == head_before
    assert model.read_bytes() == model_before
    assert len(slack_receiver.texts) == 1, slack_receiver.texts
    alert = slack_receiver.texts[0]
    for part in ("simple_train", "repro_evaluate", "try 1", "logical date 20", "Log: http"):
        assert part in alert, alert

    # What the task's log shows: the task's own command, run again by hand.
    again = subprocess.run(
        ["python", "-m", "batchserving.registry.publish", "evaluate"],
        cwd=model_repo,
        capture_output=True,
        text=True,
    )
    assert again.returncode != 0
    reason = "'train.n_estimators' = -3 is out of range; allowed: an integer from 1 to 10000"
    # The last line (the task's error line) gives the stage's own reason, not only the exit code.
    last = again.stderr.strip().splitlines()[-1]
    assert re.match(r"publish: `dvc repro evaluate` failed \(exit \d+\): ", last), last
    assert reason in last and "failed to reproduce 'train'" in last, last
    assert last.endswith("nothing was published"), last
    assert model.read_bytes() == model_before


def test_a_failed_tasks_error_is_the_commands_own_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "repo"
    path.mkdir()
    (path / "notes.txt").write_text("someone else's directory\n")
    monkeypatch.setenv("MODEL_REPO", str(path))
    dag = load_dag("simple_train")
    errors: list[str] = []
    # In place of the Slack alert: what the task raised, as Airflow logs it at error level.
    dag.get_task("repro_evaluate").on_failure_callback = [
        lambda context: errors.append(str(context["exception"]))
    ]

    dagrun = dag.test()

    assert task_states(dagrun)["repro_evaluate"] == "failed"
    assert len(errors) == 1, errors
    assert errors[0].startswith("repro_evaluate: the command failed (exit code 1): publish: ")
    assert f"MODEL_REPO={path}" in errors[0] and "not the top of a git" in errors[0], errors[0]
    assert "\n" not in errors[0] and len(errors[0]) < 700


@pytest.mark.parametrize("kind", ["not_git", "not_dvc"])
def test_model_repo_is_checked_before_any_work(tmp_path: Path, kind: str) -> None:
    # (A missing or empty MODEL_REPO is cloned: tests/integration/test_any_worker.py.)
    path = tmp_path / "repo"
    path.mkdir()
    (path / "notes.txt").write_text("someone else's directory\n")
    if kind == "not_dvc":
        run(["git", "init", "-q"], cwd=path)
    result = subprocess.run(
        ["python", "-m", "batchserving.registry.publish", "evaluate"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "MODEL_REPO": str(path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert f"MODEL_REPO={path}" in result.stderr
    expected = {"not_git": "not the top of a git", "not_dvc": "DVC"}
    assert expected[kind] in result.stderr
    assert not (path / ".dvc").exists()
