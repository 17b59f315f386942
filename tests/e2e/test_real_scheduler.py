"""End to end under a real scheduler, through REST API v2 only.

Every DAG found is unpaused and the five are triggered together, three rounds; between
rounds a person commits a training parameter change (under the repo lock, as at a
terminal), so each round trains and registers a new version. Then: every run succeeded,
no task ever met a busy lock, the registry is consistent, and no secret leaked.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from batchserving.registry.lock import repo_lock
from tests.e2e.checks import (
    LOCK_CONTENTION,
    current_prod,
    deployment_problems,
    files_under,
    git,
    git_history_blob,
    registry_problems,
    secret_hits,
    version_tags,
)
from tests.e2e.conftest import E2E, EXPECTED_DAGS

ROUNDS = 3
N_ESTIMATORS = {2: 60, 3: 80}  # round -> params.yaml train.n_estimators (round 1: as shipped)
ROUND_TIMEOUT = 300


@dataclass
class Rounds:
    dag_ids: set[str]
    triggered: list[dict[str, dict]]  # per round: dag_id -> finished run
    all_runs: list[dict]  # every run, scheduled ones included


def commit_param_change(repo: Path, n_estimators: int) -> None:
    """What a person does at a terminal: edit params.yaml and commit it, under the repo lock."""
    with repo_lock(repo):
        params = repo / "params.yaml"
        text, count = re.subn(
            r"(?m)^(\s*n_estimators:\s*)\d+", rf"\g<1>{n_estimators}", params.read_text()
        )
        assert count == 1, "params.yaml has no train.n_estimators line"
        params.write_text(text)
        ident = ["-c", "user.name=E2E Person", "-c", "user.email=person@example.invalid"]
        git(repo, *ident, "commit", "-q", "-m", f"Try n_estimators={n_estimators}", "params.yaml")


@pytest.fixture(scope="module")
def rounds(e2e: E2E) -> Rounds:
    server = e2e.server
    dag_ids = server.rest.dag_ids()
    assert dag_ids, "no DAG was loaded"
    for dag_id in dag_ids:
        server.rest.unpause(dag_id)
    triggered = []
    for n in range(1, ROUNDS + 1):
        if n in N_ESTIMATORS:
            commit_param_change(e2e.model_repo, N_ESTIMATORS[n])
        run_id = f"e2e_round_{n}"
        # One trigger after another, a fraction of a second apart: the runs still start in
        # the same scheduler loop. Concurrent triggers on SQLite held each other up in the
        # API server until the lock timed out (three at once, each waiting the full
        # timeout, then HTTP 500); the cluster test, on PostgreSQL, triggers concurrently.
        run_ids = {dag_id: server.rest.trigger(dag_id, run_id) for dag_id in sorted(dag_ids)}
        triggered.append(server.rest.wait_for_runs(run_ids, ROUND_TIMEOUT))
    for dag_id in dag_ids:  # no new scheduled runs while the checks read the results
        server.rest.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})
    all_runs = server.rest.wait_until_idle(dag_ids, ROUND_TIMEOUT)
    return Rounds(dag_ids, triggered, all_runs)


def test_the_five_dags_load_without_import_errors(e2e: E2E) -> None:
    assert e2e.server.rest.import_errors() == []
    assert e2e.server.rest.dag_ids() == EXPECTED_DAGS


def test_every_run_succeeds(e2e: E2E, rounds: Rounds) -> None:
    assert len(rounds.triggered) == ROUNDS
    assert all(set(r) == rounds.dag_ids for r in rounds.triggered)
    failed = [r for r in rounds.all_runs if r["state"] != "success"]
    details = []
    for run in failed:
        for ti in e2e.server.rest.task_instances(run["dag_id"], run["dag_run_id"]):
            if ti["state"] != "success":
                where = f"{run['dag_id']}/{run['dag_run_id']}/{ti['task_id']}"
                details.append(f"{where}: {ti['state']}")
    assert not failed, "runs not successful:\n" + "\n".join(details)


def test_no_task_met_a_busy_lock(e2e: E2E, rounds: Rounds) -> None:
    logs = list(e2e.server.task_logs())
    assert len(logs) >= ROUNDS * len(rounds.dag_ids), "fewer task logs than runs"
    hits = [
        f"{path.relative_to(e2e.server.logs_dir)}: {line.strip()[:200]}"
        for path in logs
        for line in path.read_text(errors="replace").splitlines()
        if any(marker in line for marker in LOCK_CONTENTION)
    ]
    assert not hits, "lock contention in task logs:\n" + "\n".join(hits)


def test_registry_is_consistent(e2e: E2E, rounds: Rounds) -> None:
    repo = e2e.model_repo
    tags = version_tags(repo)
    # Three different parameter sets were trained: three versions.
    assert len(tags) >= ROUNDS, tags
    assert registry_problems(repo) == []
    if "model_selection" not in rounds.dag_ids:
        pytest.fail("model_selection is not loaded: the prod assignment cannot be checked")
    prod = current_prod(repo)
    assert len(prod) == 1, f"expected exactly one current prod assignment, found {prod}"
    assert deployment_problems(repo, prod[0]) == []


def test_secrets_appear_nowhere(e2e: E2E, rounds: Rounds) -> None:
    secrets = {
        "Slack webhook URL": e2e.slack_url,
        "Slack webhook secret part": e2e.slack_url.rsplit("/", 1)[1],
        "KMA key": e2e.kma_key,
        "KMA key (URL-encoded)": quote(e2e.kma_key, safe=""),
    }
    server, repo = e2e.server, e2e.model_repo
    db_files = [p for p in server.home.glob("airflow.db*") if p.is_file()]
    with sqlite3.connect(server.db_path) as db:  # rendered fields, as stored
        query = "SELECT rendered_fields FROM rendered_task_instance_fields"
        rendered = db.execute(query).fetchall()
    assert rendered, "no rendered fields stored: the check below would prove nothing"
    hits = secret_hits(
        secrets,
        [*files_under(server.logs_dir), *db_files, *files_under(repo / "output")],
        {
            "git history": git_history_blob(repo),
            "rendered fields": "\n".join(str(r) for r in rendered).encode(),
        },
    )
    assert not hits, "secrets leaked:\n" + "\n".join(hits)
    # The connections were really used: a secret that was never read proves nothing.
    assert e2e.slack.messages, "no Slack message was sent through my_webhook"
    assert e2e.kma is not None and e2e.kma.request_count > 0, "the fake KMA was never called"
