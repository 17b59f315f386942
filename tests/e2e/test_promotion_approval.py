"""Promotion approval and serving on the prod asset, under a real Airflow, through REST only.

One server for the module (scheduler, DAG processor, API server, triggerer) on a model
repo of its own whose ``params.yaml`` says ``selection.approval: required``. The tests run
in order on that repo, each a day of a team's life, as a person would: edit params.yaml
and commit it, trigger ``model_selection``, answer its ``approve_promotion`` task through
``/api/v2/.../hitlDetails`` (or not), then look at the registry, the deployment, Slack and
the ``batch_inference`` runs that the ``iris-model-prod`` events started.

1. The first version, in the run the daily schedule makes when the DAG is unpaused:
   approved by ``admin`` → promoted; an asset-triggered
   ``batch_inference`` run serves it.
2. A challenger one row better (``test: none``): rejected → kept.
3. The same challenger, ``approval_timeout_minutes: 0.1``: no answer → kept.
4. ``approval: none``: promoted without a question (today's flow); served at once.
5. That asset-triggered run cleared and run again: the same file, byte for byte.
6. ``make rollback``'s two commands: the rollback, then ``scripts.prod_event``'s event
   through the REST API; the run it starts serves the rolled-back version.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from batchserving import PROJECT_ROOT
from batchserving.registry.lock import repo_lock
from batchserving.registry.versions import current_prod
from dags.batchserving_dags.pool import POOL, POOL_DESCRIPTION, POOL_SLOTS
from scripts.airflow_server import AirflowServer
from tests.conftest import git, run, set_params, snapshot_project
from tests.fakes.slack import SlackReceiver

SELECTION = "model_selection"
INFERENCE = "batch_inference"
APPROVAL = "approve_promotion"
RUN_TIMEOUT = 300
ANSWER_AFTER_SECONDS = 5  # after the task starts waiting (docs/selection.md, approval)
# Training params whose forest gets one more of the 45 test rows right than the default's.
ONE_ROW_BETTER = {"n_estimators": 10, "max_depth": 4}


@dataclass
class Team:
    """The server, its model repo and Slack, and the inference runs already looked at."""

    server: AirflowServer
    repo: Path
    slack: SlackReceiver
    first_run: str = ""  # the run model_selection's schedule made when it was unpaused
    last_asset_run: str = ""
    seen_inference_runs: set[str] = field(default_factory=set)


def commit_params(repo: Path, section: str, **values: object) -> None:
    """Edit params.yaml and commit it under the repo lock, as a person at a terminal does."""
    with repo_lock(repo):
        set_params(repo, section, **values)
        ident = ["-c", "user.name=E2E Person", "-c", "user.email=person@example.invalid"]
        git(repo, *ident, "commit", "-q", "-m", f"{section}: {values}", "params.yaml")


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    root = tmp_path_factory.mktemp("approval")
    repo = snapshot_project(root / "model-repo")
    commit_params(repo, "selection", approval="required", approval_timeout_minutes=10)
    with ExitStack() as stack:
        slack = stack.enter_context(SlackReceiver())
        # The scheduler looks for answers that timed out every 2 s (default 15 s).
        sweep = {"AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2"}
        server = AirflowServer(home=root / "airflow-home", model_repo=repo, extra_env=sweep)
        stack.callback(server.stop)  # runs even when start() fails half way
        server.start()
        server.rest.add_pool(POOL, POOL_SLOTS, POOL_DESCRIPTION)
        server.rest.add_connection("my_webhook", "slackwebhook", password=slack.url)
        server.rest.wait_for_dags({SELECTION, INFERENCE})
        assert server.rest.import_errors() == []
        for dag_id in (SELECTION, INFERENCE):
            server.rest.unpause(dag_id)
        # Unpaused, the daily schedule makes a run for its latest 00:30 (catchup=False),
        # and max_active_runs=1 queues every other run behind it: that run goes first.
        runs = server.rest.wait(lambda: server.rest.runs(SELECTION), 60, "the scheduled run")
        yield Team(server, repo, slack, first_run=runs[0]["dag_run_id"])


def states(team: Team, run_id: str) -> dict[str, str]:
    tis = team.server.rest.task_instances(SELECTION, run_id)
    return {ti["task_id"]: ti["state"] for ti in tis}


def start_selection(team: Team, run_id: str, trigger: bool = True) -> None:
    """Trigger model_selection; wait until it asks for approval (fail if it ends first)."""
    rest = team.server.rest
    if trigger:
        rest.trigger(SELECTION, run_id)

    def asking() -> bool:
        if rest.api("GET", f"/dags/{SELECTION}/dagRuns/{run_id}")["state"] in {"success", "failed"}:
            raise AssertionError(f"{run_id} ended without asking: {states(team, run_id)}")
        return states(team, run_id).get(APPROVAL) == "awaiting_input"

    rest.wait(asking, RUN_TIMEOUT, f"{run_id} to ask for approval", poll=1.0)
    # A person answers seconds after the question, not in the same second: Airflow 3.3
    # retries the task, and loses the answer, when it comes before the scheduler has seen
    # the deferring try end (docs/selection.md, approval).
    time.sleep(ANSWER_AFTER_SECONDS)
    assert asking(), f"{run_id} stopped asking: {states(team, run_id)}"


def finish(team: Team, run_id: str) -> dict[str, str]:
    """Wait for the run to end; return its task states (the run must have succeeded)."""
    run = team.server.rest.wait_for_runs({SELECTION: run_id}, RUN_TIMEOUT)[SELECTION]
    result = states(team, run_id)
    assert run["state"] == "success", result
    return result


def prod_version(team: Team) -> str:
    """The version of the newest prod tag: what compare, promote and inference resolve."""
    prod = current_prod(team.repo)
    assert prod is not None, "nothing in prod"
    return prod.version


def predictions_of(team: Team, run_id: str) -> tuple[Path, list[dict]]:
    """The one predictions file a batch_inference run wrote, and its rows."""
    found = [
        (path, rows)
        for path in (team.repo / "output/predictions").rglob("*.csv")
        if (rows := list(csv.DictReader(path.open(newline="")))) and rows[0]["run_id"] == run_id
    ]
    assert len(found) == 1, f"{run_id} wrote {len(found)} files"
    return found[0]


def served_by_next_asset_run(team: Team) -> str:
    """The model version the next new asset-triggered batch_inference run scored with."""
    rest = team.server.rest

    def new_run() -> dict | None:
        for run in rest.runs(INFERENCE):
            fresh = run["dag_run_id"] not in team.seen_inference_runs
            if fresh and run["run_type"] == "asset_triggered" and run["state"] == "success":
                return run
        return None

    run = rest.wait(new_run, RUN_TIMEOUT, "an asset-triggered batch_inference run", poll=1.0)
    team.seen_inference_runs.add(run["dag_run_id"])
    assert run["logical_date"] is None  # it seeds from run_after, stated in the DAG doc
    team.last_asset_run = run["dag_run_id"]
    _, rows = predictions_of(team, run["dag_run_id"])
    assert len(rows) == 5, f"{run['dag_run_id']} wrote {len(rows)} rows"
    assert len({row["model_version"] for row in rows}) == 1
    return rows[0]["model_version"]


def prod_tag_message(repo: Path) -> dict:
    tags = run(["git", "tag", "-l", "--sort=-creatordate", "iris-model#prod#*"], cwd=repo)
    newest = tags.stdout.split()[0]
    message = run(["git", "tag", "-l", "--format=%(contents)", newest], cwd=repo).stdout
    return json.loads(message)


def test_approved_promotion_is_promoted_and_served_at_once(team: Team) -> None:
    rest, first = team.server.rest, team.first_run
    assert first.startswith("scheduled__"), first
    start_selection(team, first, trigger=False)
    question = rest.waiting_question(SELECTION, first, APPROVAL)
    assert question["subject"] == "Promote iris-model v0.0.1 to prod?"
    assert question["options"] == ["Approve", "Reject"] and question["defaults"] == ["Reject"]
    assert '"decision": "promote"' in question["body"]  # the comparison, readable
    assert "evidence: none (no champion to compare with)" in question["body"]
    assert rest.answer(SELECTION, first, APPROVAL, "Approve")["responded_by"]["name"] == "admin"

    result = finish(team, first)
    assert result["promote"] == "success" and result["keep_champion"] == "skipped", result
    assert prod_version(team) == "v0.0.1"
    assert prod_tag_message(team.repo)["approval"]["by"] == "admin"
    assert any(
        "promoted iris-model v0.0.1" in t and "Approved by admin" in t for t in team.slack.texts
    )
    assert served_by_next_asset_run(team) == "v0.0.1"


def test_rejected_promotion_keeps_the_champion(team: Team) -> None:
    commit_params(team.repo, "train", **ONE_ROW_BETTER)
    commit_params(team.repo, "selection", test="none")
    start_selection(team, "approval_2")
    team.server.rest.answer(SELECTION, "approval_2", APPROVAL, "Reject")

    result = finish(team, "approval_2")
    assert result["keep_champion"] == "success" and result["promote"] == "skipped", result
    assert prod_version(team) == "v0.0.1"
    assert any("v0.0.2 was not approved. Rejected by admin" in t for t in team.slack.texts)


def test_no_answer_within_the_time_out_keeps_the_champion(team: Team) -> None:
    commit_params(team.repo, "selection", approval_timeout_minutes=0.1)
    start_selection(team, "approval_3")  # and nobody answers

    result = finish(team, "approval_3")
    assert result["keep_champion"] == "success" and result["promote"] == "skipped", result
    assert prod_version(team) == "v0.0.1"
    answer = team.server.rest.waiting_question(SELECTION, "approval_3", APPROVAL)
    assert answer["chosen_options"] == ["Reject"] and answer["responded_by_user"] is None
    assert any("No one approved it in time" in t for t in team.slack.texts)


def test_without_approval_the_gate_promotes_as_before(team: Team) -> None:
    commit_params(team.repo, "selection", approval="none")
    team.server.rest.trigger(SELECTION, "approval_4")

    result = finish(team, "approval_4")
    assert result["promote"] == "success" and result[APPROVAL] == "skipped", result
    assert prod_version(team) == "v0.0.2"
    assert "approval" not in prod_tag_message(team.repo)
    assert served_by_next_asset_run(team) == "v0.0.2"


def test_a_rerun_of_an_asset_triggered_run_writes_the_same_file(team: Team) -> None:
    rest, run_id = team.server.rest, team.last_asset_run
    path, _ = predictions_of(team, run_id)
    before = path.read_bytes()
    body = {"dag_run_id": run_id, "task_ids": ["predict"], "dry_run": False, "only_failed": False}
    rest.api("POST", f"/dags/{INFERENCE}/clearTaskInstances", json=body)

    def rerun_done() -> bool:
        (predict,) = rest.task_instances(INFERENCE, run_id)
        return predict["try_number"] >= 2 and predict["state"] == "success"

    rest.wait(rerun_done, RUN_TIMEOUT, f"the re-run of {run_id}", poll=1.0)
    assert predictions_of(team, run_id)[0] == path  # no second file for the run
    assert path.read_bytes() == before


def test_rollback_sends_the_prod_event_through_the_rest_api(team: Team) -> None:
    env = {
        "MODEL_REPO": str(team.repo),
        "AIRFLOW_API_URL": team.server.url,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(team.server.password_path),
    }
    for command in (
        ["-m", "batchserving.selection.promote", "rollback", "v0.0.1"],
        ["-m", "scripts.prod_event"],
    ):
        done = subprocess.run(
            [sys.executable, *command],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert "iris-model-prod event" in done.stdout and "sent to" in done.stdout, done.stdout
    assert team.server.password not in done.stdout + done.stderr
    assert prod_version(team) == "v0.0.1"
    assert served_by_next_asset_run(team) == "v0.0.1"
