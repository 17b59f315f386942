"""The cluster end to end: PostgreSQL, Celery on Redis, three workers, an S3 remote, a git server.

One cluster (``scripts.cluster``, as ``make cluster WORKERS=2`` starts it) in a temp dir
on free ports; a third worker is added to it while it runs (``make cluster WORKERS=3``).
All four DAGs are unpaused and triggered at the same moment, two rounds; between them a
person pushes a params change to the git server. Then faults, each repaired by ``make
cluster`` (``python -m scripts.cluster up``) alone: a worker is ``kill -9``-ed in the
middle of a publish (``dvc push`` or ``git push`` in its process tree); with the next
runs' tasks running, Redis, then the scheduler. The S3 endpoint is stopped (SIGSTOP)
during ``repro_evaluate``: the step fails within the bound naming the endpoint, and its
retry after SIGCONT succeeds. A third worker is added to the running cluster;
``batch_inference`` runs until each worker has served after the last promotion; then,
after runs for a past day served by two workers, ``monitor_predictions`` for that day
runs on one worker and counts every worker's files (they reach it through the S3 remote's
``served/predictions/``). Last, the whole cluster is stopped and started again: the same
ports, and a person's clone still pushes.

Checked: every round's run and task instance succeeded on its first try, on every worker;
after each fault only the part that was down was restarted, and adding a worker started
that worker alone; the runs finished and no task instance is left unfinished; the
triggerer heartbeats; the person's params were trained; on the git server every version's
model is in the S3 bucket, one version per model, distinct prod counters, one current
prod, the person's commit on the branch; every worker serves the current prod; no secret
in task logs, the metadata DB (``pg_dump``, rendered fields included; the connection
table aside), the server's history or outputs; a restart keeps the ports, the workers and
a person's clone working; ``make cluster`` twice starts nothing new; stopping leaves no
process behind.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from batchserving import PROJECT_ROOT
from batchserving.core.names import ARTIFACT, MONITORING_DIR, PREDICTIONS_DIR
from batchserving.monitoring.days import FILE_NAME, KST, file_instant
from batchserving.registry.dvclock import model_hash
from scripts.airflow_api import RunConflict
from scripts.cluster.cluster import Cluster
from scripts.cluster.seaweedfs import BUCKET
from scripts.cluster.state import MARKER
from scripts.processes import cmdline, descendants, is_running, pids_with_env
from tests.conftest import git, snapshot_project
from tests.e2e.checks import current_prod, files_under, git_history_blob, secret_hits
from tests.e2e.conftest import EXPECTED_DAGS
from tests.fakes.slack import SlackReceiver

ROUNDS = 2
PERSONS_N_ESTIMATORS = 40  # params.yaml train.n_estimators pushed between the rounds
ROUND_TIMEOUT = 420
PUBLISHING = ("dvc push", "git push")
FIRST_WORKERS = 2  # the cluster starts with these; one more is added while it runs
WORKERS = 3
MAX_INFERENCE_RUNS = 12
FIVE = timedelta(minutes=5)
# A hung S3 endpoint fails the step within this (the remote's timeouts, NETWORK_BOUNDS).
S3_HANG_BOUND = 150
PERSON = ["-c", "user.name=A Person", "-c", "user.email=person@example.invalid"]
CLUSTER_PACKAGES = ("psycopg2", "redis", "s3fs", "airflow.providers.celery")


@dataclass
class Story:
    """What happened to the cluster, for the checks."""

    cluster: Cluster
    slack: SlackReceiver
    slack_url: str
    person: Path  # the person's clone of the server's repo
    person_commit: str = ""
    rounds: list[dict[str, dict]] = field(default_factory=list)  # dag_id -> finished run
    round_runs: list[tuple[str, str]] = field(default_factory=list)  # every run they made
    crash: dict = field(default_factory=dict)
    after_crash: dict[str, dict] = field(default_factory=dict)
    repairs: dict[str, dict] = field(default_factory=dict)  # fault -> what `up` did
    crash_run: dict = field(default_factory=dict)  # the killed run, finished by its retry
    s3_hang: dict = field(default_factory=dict)
    inference: list[tuple[str, str]] = field(default_factory=list)  # (run_id, hostname)
    latest: dict = field(default_factory=dict)  # worker -> its latest predictions, rows
    monitored: dict = field(default_factory=dict)  # monitor_predictions of a served day
    added: dict = field(default_factory=dict)  # `make cluster WORKERS=3` on the running cluster
    timings: dict[str, float] = field(default_factory=dict)


def missing_packages() -> list[str]:
    found = []
    for name in CLUSTER_PACKAGES:
        try:
            present = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            present = False
        if not present:
            found.append(name)
    return found


@pytest.fixture(scope="module")
def cluster_started() -> Iterator[tuple[Cluster, SlackReceiver, str, Path]]:
    """The cluster, stopped by pid at the end even when a test or the start fails."""
    if missing := missing_packages():
        pytest.fail(f"the cluster extra is not installed ({missing}): `make test` installs it")
    # Not pytest's tmp_path: its parents are 0700, and PostgreSQL runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="cluster-test-"))
    root.chmod(0o711)  # enterable, not listable
    try:
        with SlackReceiver() as slack:
            slack_url = slack.url.replace("/T0/B0/X", f"/TCL/BCL/{secrets.token_hex(12)}")
            cluster = Cluster(
                data=root / "data",
                source=snapshot_project(root / "source"),
                slack_webhook=slack_url,
                worker_count=FIRST_WORKERS,
            )
            try:
                cluster.start()
                cluster.wait_ready()
                yield cluster, slack, slack_url, root
            finally:
                cluster.state.load()  # `make cluster` in a subprocess may have restarted parts
                cluster.stop()
                left = pids_with_env(MARKER, str(cluster.data))
                assert not left, f"processes of the cluster left running: {left}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def person_pushes_params(cluster: Cluster, clone: Path, n_estimators: int) -> str:
    """A person clones the server's repo with the key, edits params.yaml, commits, pushes."""
    env = cluster.git_server.git_env(clone.parent)
    if not clone.exists():
        subprocess.run(
            ["git", "clone", "--quiet", cluster.git_server.model_repo_url, str(clone)],
            env=env,
            check=True,
            capture_output=True,
        )
    subprocess.run(["git", "pull", "--quiet"], cwd=clone, env=env, check=True)
    params = clone / "params.yaml"
    text, count = re.subn(
        r"(?m)^(\s*n_estimators:\s*)\d+", rf"\g<1>{n_estimators}", params.read_text()
    )
    assert count == 1, "params.yaml has no train.n_estimators line"
    params.write_text(text)
    git(clone, *PERSON, "commit", "-q", "-m", f"Try n_estimators={n_estimators}", "params.yaml")
    subprocess.run(["git", "push", "--quiet"], cwd=clone, env=env, check=True)
    return git(clone, "rev-parse", "HEAD").strip()


def trigger_round(cluster: Cluster, dag_ids: set[str], run_id: str) -> dict[str, dict]:
    """Trigger every DAG at the same moment; wait until all of them finished."""
    with ThreadPoolExecutor(len(dag_ids)) as pool:
        started = dict(pool.map(lambda d: (d, cluster.rest.trigger(d, run_id)), dag_ids))
    return cluster.rest.wait_for_runs(started, ROUND_TIMEOUT)


def kill_worker_mid_publish(cluster: Cluster, run_id: str, timeout: float = 180) -> dict:
    """``kill -9`` the worker (and every process under it) whose tree shows a push."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in cluster.workers:
            leader = cluster.state.pids[worker][0]
            tree = descendants(leader)
            pushing = [cmdline(p) for p in tree if any(s in cmdline(p) for s in PUBLISHING)]
            if pushing:
                for pid in [leader, *tree]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                cluster.state.procs[worker].wait(timeout=30)
                return {"worker": worker, "command": pushing[0], "pids": [leader, *tree]}
        run = cluster.rest.api("GET", f"/dags/simple_train/dagRuns/{run_id}")
        assert run["state"] not in ("success", "failed"), (
            f"no push seen before the run ended: {run}"
        )
        time.sleep(0.02)
    raise AssertionError(f"no worker showed {PUBLISHING} within {timeout:.0f}s")


def serve_on_every_worker(cluster: Cluster, story: Story) -> None:
    """Run batch_inference until each worker has served since the last promotion."""
    for n in range(1, MAX_INFERENCE_RUNS + 1):
        run_id = f"cluster_inference_{n}"
        cluster.rest.wait_for_runs(
            {"batch_inference": cluster.rest.trigger("batch_inference", run_id)}, 120
        )
        for ti in cluster.rest.task_instances("batch_inference", run_id):
            story.inference.append((run_id, ti["hostname"] or ""))
        if {host for _, host in story.inference} >= set(cluster.workers):
            return


# A past KST day no other run serves: its files are only the runs below. (A logical date
# in the future would not run: Airflow holds a task whose logical date is ahead of now.)
MONITORED_DAY = date(2026, 7, 1)


def day_files_by_worker(cluster: Cluster, day: date) -> dict[str, set[str]]:
    """Worker -> the names of KST ``day``'s prediction files in its workspace."""
    found: dict[str, set[str]] = {}
    for worker in cluster.workers:
        for path in (cluster.airflow.workspace(worker) / PREDICTIONS_DIR).glob("*/*"):
            match = FILE_NAME.match(path.name)
            if match and file_instant(match).astimezone(KST).date() == day:
                found.setdefault(worker, set()).add(path.name)
    return found


def monitor_a_served_day(cluster: Cluster) -> dict:
    """``batch_inference`` for 5-minute marks of a past day until two workers served it, then
    ``monitor_predictions`` for that day: it runs on one worker and must count every
    worker's files of the day (they reach it through the S3 remote)."""
    first = datetime.combine(MONITORED_DAY, dt_time(9, 0), tzinfo=KST)
    for n in range(MAX_INFERENCE_RUNS):
        run_id = cluster.rest.trigger("batch_inference", f"cluster_day_{n}", first + n * FIVE)
        cluster.rest.wait_for_runs({"batch_inference": run_id}, 120)
        if n >= 1 and len(day_files_by_worker(cluster, MONITORED_DAY)) >= 2:
            break
    per_worker = day_files_by_worker(cluster, MONITORED_DAY)  # before the monitor copies any
    # The run's logical date is the next day's 01:00 KST, as for a scheduled run.
    logical = datetime.combine(MONITORED_DAY + timedelta(days=1), dt_time(1, 0), tzinfo=KST)
    run_id = cluster.rest.trigger("monitor_predictions", "cluster_monitor", logical)
    run = cluster.rest.wait_for_runs({"monitor_predictions": run_id}, ROUND_TIMEOUT)
    ti = task_instance(cluster, "monitor_predictions", run_id, "monitor")
    day_dir = cluster.airflow.workspace(ti["hostname"]) / MONITORING_DIR / str(MONITORED_DAY)
    summary = day_dir / "summary.json"
    return {
        "day": MONITORED_DAY,
        "per_worker": per_worker,
        "run": run["monitor_predictions"],
        "task": ti,
        "summary": json.loads(summary.read_text()) if summary.is_file() else None,
    }


@pytest.fixture(scope="module")
def story(cluster_started) -> Story:
    cluster, slack, slack_url, root = cluster_started
    story = Story(cluster, slack, slack_url, root / "person" / "model-repo")
    story.timings["start"] = cluster.timings["total"]
    dag_ids = cluster.rest.wait_for_dags(EXPECTED_DAGS)
    for dag_id in dag_ids:
        cluster.rest.unpause(dag_id)
    for n in range(1, ROUNDS + 1):
        if n == 2:
            story.person_commit = person_pushes_params(cluster, story.person, PERSONS_N_ESTIMATORS)
        t0 = time.monotonic()
        story.rounds.append(trigger_round(cluster, dag_ids, f"cluster_round_{n}"))
        story.timings[f"round_{n}"] = time.monotonic() - t0
    # Every run so far, the ones unpausing scheduled included, belongs to the rounds.
    runs = cluster.rest.wait_until_idle(dag_ids, ROUND_TIMEOUT)
    story.round_runs = [(r["dag_id"], r["dag_run_id"]) for r in runs]

    t0 = time.monotonic()
    crash_run = cluster.rest.trigger("simple_train", "cluster_crash")
    story.crash = kill_worker_mid_publish(cluster, crash_run)
    story.repairs["worker"] = make_cluster(cluster, story.crash["worker"])
    # The next runs, on any worker, with faults while their tasks run; the killed task
    # holds the pool's slot until the scheduler has seen no heartbeat from it for a minute.
    next_runs = {
        dag_id: cluster.rest.trigger(dag_id, "cluster_next")
        for dag_id in ("model_selection", "batch_inference")
    }
    for part in ("redis", "scheduler"):
        wait_for_a_running_task(cluster, next_runs)
        os.kill(cluster.state.pids[part][0], signal.SIGKILL)
        story.repairs[part] = make_cluster(cluster, part)
    story.after_crash = cluster.rest.wait_for_runs(next_runs, ROUND_TIMEOUT)
    story.crash_run = cluster.rest.wait_for_runs({"simple_train": crash_run}, ROUND_TIMEOUT)
    story.timings["faults_and_next"] = time.monotonic() - t0

    t0 = time.monotonic()
    person_pushes_params(cluster, story.person, PERSONS_N_ESTIMATORS + 1)  # a push to do
    story.s3_hang = stop_s3_during_repro_evaluate(cluster)
    story.timings["s3_hang"] = time.monotonic() - t0

    story.added = make_cluster(cluster, f"worker-{WORKERS}", "--workers", str(WORKERS))
    t0 = time.monotonic()
    serve_on_every_worker(cluster, story)
    story.timings["inference_on_every_worker"] = time.monotonic() - t0
    # Before the monitor copies other workers' files into its worker's workspace.
    story.latest = {w: latest_prediction(cluster.airflow.workspace(w)) for w in cluster.workers}
    t0 = time.monotonic()
    story.monitored = monitor_a_served_day(cluster)
    story.timings["monitor"] = time.monotonic() - t0
    for dag_id in dag_ids:  # nothing new starts while the checks read the results
        cluster.rest.pause(dag_id)
    cluster.rest.wait_until_idle(dag_ids, ROUND_TIMEOUT)
    return story


def make_cluster(cluster: Cluster, part: str, *options: str) -> dict:
    """``make cluster`` (``up`` with ``options``) after ``part`` was killed, or to add it:
    what it said, and which pids changed."""
    if part in cluster.state.procs:
        cluster.state.procs[part].wait(timeout=30)  # reaped: the kill has taken effect
    before = dict(cluster.state.pids)
    up = cluster_command(cluster, "up", *options)
    changed = sorted(name for name, pid in cluster.state.pids.items() if before.get(name) != pid)
    return {"returncode": up.returncode, "output": up.stdout + up.stderr, "changed": changed}


def wait_for_a_running_task(cluster: Cluster, runs: dict[str, str], timeout: float = 180) -> None:
    """Wait until a task instance of ``runs`` is running (a fault then meets a live task)."""

    def running() -> bool:
        return any(
            ti["state"] == "running"
            for dag_id, run_id in runs.items()
            for ti in cluster.rest.task_instances(dag_id, run_id)
        )

    cluster.rest.wait(running, timeout, f"a running task of {runs}", poll=0.2)


def task_instance(cluster: Cluster, dag_id: str, run_id: str, task_id: str) -> dict:
    return cluster.rest.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")


def stop_s3_during_repro_evaluate(cluster: Cluster) -> dict:
    """SIGSTOP SeaweedFS once ``repro_evaluate`` runs (the person's change makes it pull and
    push); SIGCONT once its try has failed; wait for the run (its retry) to finish."""
    run_id = cluster.rest.trigger("simple_train", "cluster_s3")

    def state() -> str:
        try:
            return task_instance(cluster, "simple_train", run_id, "repro_evaluate")["state"]
        except AssertionError:  # the run's task instances are not made yet
            return "none"

    cluster.rest.wait(lambda: state() == "running", 180, "repro_evaluate to run", poll=0.2)
    weed = cluster.state.pids["seaweedfs"][0]
    os.killpg(weed, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        cluster.rest.wait(lambda: state() != "running", 600, "the hung step to fail", poll=1.0)
        failed_after = time.monotonic() - t0
    finally:
        os.killpg(weed, signal.SIGCONT)
    finished = cluster.rest.wait_for_runs({"simple_train": run_id}, ROUND_TIMEOUT)
    log = cluster.airflow.logs_dir.glob(
        f"dag_id=simple_train/run_id={run_id}/task_id=repro_evaluate/attempt=1.log"
    )
    return {
        "run": finished["simple_train"],
        "failed_after": failed_after,
        "first_try_log": "".join(path.read_text(errors="replace") for path in log),
        "task": task_instance(cluster, "simple_train", run_id, "repro_evaluate"),
    }


# --- helpers of the checks -----------------------------------------------------------------


def failed_task_details(cluster: Cluster, dag_id: str, run_id: str) -> list[str]:
    """Each task instance that did not succeed on its first try, with its log's tail."""
    details = []
    for ti in cluster.rest.task_instances(dag_id, run_id):
        ran = ti["state"] != "skipped" or ti["try_number"] > 0
        if ran and (ti["state"] not in ("success", "skipped") or ti["try_number"] != 1):
            where = f"{dag_id}/{run_id}/{ti['task_id']}"
            details.append(f"{where}: {ti['state']} try {ti['try_number']} on {ti['hostname']}")
            details.append(task_log_tail(cluster, dag_id, run_id, ti["task_id"]))
    return details


def task_log_tail(cluster: Cluster, dag_id: str, run_id: str, task_id: str) -> str:
    logs = sorted(
        cluster.airflow.logs_dir.glob(f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/*")
    )
    if not logs:
        return "    (no log)"
    lines = logs[-1].read_text(errors="replace").splitlines()
    picked = [ln for ln in lines if '"level":"error"' in ln or "ERROR" in ln or "rror" in ln]
    return "\n".join("    " + ln[:400] for ln in (picked or lines)[-8:])


def server_tags(cluster: Cluster, pattern: str) -> list[str]:
    return git(cluster.git_server.bare_repo, "tag", "--list", pattern).split()


def version_md5s(cluster: Cluster) -> dict[str, str | None]:
    """Each ``iris-model@v*`` tag on the server -> the model md5 its commit's dvc.lock pins."""
    found = {}
    for tag in server_tags(cluster, f"{ARTIFACT}@v*"):
        shown = subprocess.run(
            ["git", "show", f"{tag}^{{commit}}:dvc.lock"],
            cwd=cluster.git_server.bare_repo,
            capture_output=True,
            text=True,
        )
        found[tag] = model_hash(shown.stdout if shown.returncode == 0 else None)
    return found


def bucket_md5s(cluster: Cluster) -> set[str]:
    """The content hashes of every object in the S3 DVC remote (``files/md5/ab/cdef...``)."""
    keys = cluster.seaweedfs.s3().find(f"{BUCKET}/dvc/files/md5")
    return {"".join(key.split("/")[-2:]) for key in keys}


def person_clone_synced(story: Story) -> Path:
    env = story.cluster.git_server.git_env(story.person.parent)
    fetch = ["git", "fetch", "--quiet", "--tags", "--force", "--prune", "--prune-tags", "origin"]
    subprocess.run(fetch, cwd=story.person, env=env, check=True)
    subprocess.run(
        ["git", "reset", "--quiet", "--hard", "origin/main"], cwd=story.person, check=True
    )
    return story.person


def latest_prediction(workspace: Path) -> tuple[Path, list[dict]] | None:
    files = sorted((workspace / PREDICTIONS_DIR).glob("*/*.csv"), key=lambda p: p.stat().st_mtime)
    if not files:
        return None
    with open(files[-1], newline="", encoding="utf-8") as handle:
        return files[-1], list(csv.DictReader(handle))


# --- the checks ----------------------------------------------------------------------------


def test_the_four_dags_load_on_the_cluster(story: Story) -> None:
    assert story.cluster.rest.import_errors() == []
    assert story.cluster.rest.dag_ids() == EXPECTED_DAGS


def test_every_round_run_and_task_succeeds_on_its_first_try(story: Story) -> None:
    cluster = story.cluster
    assert len(story.rounds) == ROUNDS and all(set(r) == EXPECTED_DAGS for r in story.rounds)
    problems = []
    for dag_id, run_id in story.round_runs:
        run = cluster.rest.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        if run["state"] != "success":
            problems.append(f"{dag_id}/{run_id}: run {run['state']}")
        problems += failed_task_details(cluster, dag_id, run_id)
    assert not problems, "\n".join(problems)


def test_tasks_ran_on_every_worker(story: Story) -> None:
    hosts = {
        ti["hostname"]
        for dag_id, run_id in story.round_runs
        for ti in story.cluster.rest.task_instances(dag_id, run_id)
        if ti["hostname"]
    } | {host for _, host in story.inference}
    assert hosts >= set(story.cluster.workers), f"task instances ran on {hosts}"


def test_round_two_trained_the_persons_params(story: Story) -> None:
    trained = {}
    for tag in server_tags(story.cluster, f"{ARTIFACT}@v*"):
        params = git(story.cluster.git_server.bare_repo, "show", f"{tag}^{{commit}}:params.yaml")
        trained[tag] = yaml.safe_load(params)["train"]["n_estimators"]
    assert PERSONS_N_ESTIMATORS in trained.values(), f"versions and their n_estimators: {trained}"


def test_the_server_registry_is_consistent(story: Story) -> None:
    cluster = story.cluster
    versions = version_md5s(cluster)
    assert versions, "the git server has no iris-model version tag"
    in_bucket = bucket_md5s(cluster)
    missing = {tag: md5 for tag, md5 in versions.items() if md5 not in in_bucket}
    assert not missing, f"versions whose model is not in s3://{BUCKET}/dvc: {missing}"
    by_md5: dict[str | None, list[str]] = {}
    for tag, md5 in versions.items():
        by_md5.setdefault(md5, []).append(tag)
    assert all(len(tags) == 1 for tags in by_md5.values()), f"one model, many versions: {by_md5}"
    counters = [int(t.rsplit("#", 1)[1]) for t in server_tags(cluster, f"{ARTIFACT}#prod#*")]
    assert counters and len(counters) == len(set(counters)), f"prod counters: {counters}"
    assert len(current_prod(person_clone_synced(story))) == 1, "not exactly one current prod"
    branch = git(cluster.git_server.bare_repo, "rev-parse", "refs/heads/main").strip()
    ancestor = subprocess.run(
        ["git", "merge-base", "--is-ancestor", story.person_commit, branch],
        cwd=cluster.git_server.bare_repo,
    )
    assert ancestor.returncode == 0, f"the person's {story.person_commit[:12]} left the branch"


def test_every_worker_serves_the_current_prod(story: Story) -> None:
    prod = current_prod(person_clone_synced(story))
    assert len(prod) == 1, f"current prod: {prod}"
    served = {}
    for worker in story.cluster.workers:
        latest = story.latest[worker]
        assert latest, f"{worker} wrote no predictions (inference runs: {story.inference})"
        path, rows = latest
        served[worker] = {(r["model_version"], r["model_commit"]) for r in rows}
        assert served[worker] == {(prod[0].version, prod[0].commit)}, (
            f"{worker}'s {path.name} names {served[worker]}, prod is {prod[0]}"
        )


def test_a_worker_added_to_the_running_cluster_serves(story: Story) -> None:
    added = story.added
    assert added["returncode"] == 0, added["output"][-3000:]
    assert "is running: restarting worker-3\n" in added["output"], added["output"]
    assert added["changed"] == ["worker-3"], added["changed"]
    assert story.cluster.workers == [f"worker-{n}" for n in range(1, WORKERS + 1)]
    # Its first task cloned its workspace, and it served the current prod like the others.
    assert "worker-3" in {host for _, host in story.inference}, story.inference
    assert story.latest["worker-3"], "worker-3 wrote no predictions"


def test_the_monitor_counts_every_workers_predictions_of_the_day(story: Story) -> None:
    monitored = story.monitored
    assert monitored["run"]["state"] == "success", monitored["run"]
    assert monitored["task"]["try_number"] == 1, monitored["task"]
    per_worker = monitored["per_worker"]
    assert len(per_worker) >= 2, f"{monitored['day']} was served by {sorted(per_worker)} only"
    every_file = set().union(*per_worker.values())
    summary = monitored["summary"]
    assert summary, f"no summary on {monitored['task']['hostname']}"
    assert summary["files"] == len(every_file) and not summary["skipped"], (summary, per_worker)


def test_a_worker_killed_mid_publish_leaves_the_next_runs_working(story: Story) -> None:
    assert any(s in story.crash["command"] for s in PUBLISHING), story.crash
    assert not any(is_running(pid) for pid in story.crash["pids"]), "a killed process lives"
    problems = []
    for dag_id, run in {**story.after_crash, **story.crash_run}.items():
        if run["state"] != "success":
            problems.append(f"{dag_id}/{run['dag_run_id']}: run {run['state']}")
            problems += failed_task_details(story.cluster, dag_id, run["dag_run_id"])
    assert not problems, f"after killing {story.crash['worker']}:\n" + "\n".join(problems)


def cluster_secrets(story: Story) -> dict[str, str]:
    s = story.cluster.state.secrets
    found = {
        "S3 access key id": s.s3_access_key,
        "S3 secret key": s.s3_secret_key,
        "Slack webhook URL": story.slack_url,
        "Slack webhook secret part": story.slack_url.rsplit("/", 1)[1],
        "KMA key": s.fake_kma_key,
        "KMA key (URL-encoded)": quote(s.fake_kma_key, safe=""),
    }
    key_lines = story.cluster.git_server.private_key.read_text().splitlines()[1:-1]
    found.update({f"git private key line {i}": ln for i, ln in enumerate(key_lines) if ln})
    weed = story.cluster.data / "seaweedfs"
    jwt_keys = re.findall(r'(?m)^key = "([0-9a-f]{64})"$', (weed / "security.toml").read_text())
    assert len(jwt_keys) == 4, "security.toml holds no JWT keys: the check would miss them"
    found.update({f"SeaweedFS JWT key {i}": key for i, key in enumerate(jwt_keys)})
    tls_lines = (weed / "grpc.key").read_text().splitlines()[1:-1]
    found.update({f"SeaweedFS gRPC key line {i}": ln for i, ln in enumerate(tls_lines) if ln})
    return found


def test_no_secret_in_logs_db_history_or_outputs(story: Story) -> None:
    cluster = story.cluster
    dump = cluster.postgres.dump("--exclude-table-data=connection")
    assert b"rendered_task_instance_fields" in dump and b"bash_command" in dump, (
        "the dump holds no rendered fields: the check below would prove nothing"
    )
    workspaces = [cluster.airflow.workspace(w) / "output" for w in cluster.workers]
    hits = secret_hits(
        cluster_secrets(story),
        [*files_under(cluster.airflow.logs_dir), *files_under(*workspaces)],
        {"pg_dump": dump, "server git history": git_history_blob(cluster.git_server.bare_repo)},
    )
    assert not hits, "secrets leaked:\n" + "\n".join(hits)
    # The connections were really used: a secret never read would prove nothing.
    assert story.slack.messages, "no Slack message was sent through my_webhook"
    assert bucket_md5s(cluster), "nothing was pushed to the S3 remote through dvc_remote"


def run_git(cluster: Cluster, root: Path, *args: str, cwd: Path | None = None):
    """git with the workers' key and the server's host key, its outcome (never raises)."""
    env = cluster.git_server.git_env(root)
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_the_git_key_reaches_only_the_model_repo(cluster_started) -> None:
    cluster, _, _, root = cluster_started
    other = cluster.git_server.bare_repo.parent / "other-repo.git"  # another repository on the host
    try:
        git(root, "init", "--quiet", "--bare", "-b", "main", str(other))
        key_reaches_only_the_model_repo(cluster, root, other)
    finally:
        shutil.rmtree(other, ignore_errors=True)


def key_reaches_only_the_model_repo(cluster: Cluster, root: Path, other: Path) -> None:
    server = cluster.git_server.model_repo_url.removesuffix(str(cluster.git_server.bare_repo))
    mine = run_git(cluster, root, "ls-remote", cluster.git_server.model_repo_url)
    assert mine.returncode == 0 and "refs/heads/main" in mine.stdout, mine.stderr
    local = root / "other-work"
    git(root, "init", "--quiet", "-b", "main", str(local))
    git(local, *PERSON, "commit", "--quiet", "--allow-empty", "-m", "Not the model repo")
    for url in (f"{server}{other}", f"{cluster.git_server.model_repo_url}/../{other.name}"):
        listed = run_git(cluster, root, "ls-remote", url)
        assert listed.returncode != 0, f"the key lists {url}: {listed.stdout[:200]}"
        assert f"reaches {cluster.git_server.bare_repo} only" in listed.stderr, listed.stderr[-300:]
        pushed = run_git(cluster, root, "push", url, "HEAD:refs/heads/main", cwd=local)
        assert pushed.returncode != 0, f"the key pushes to {url}"
    assert git(other, "for-each-ref").strip() == "", "a push reached the other repository"
    shell = subprocess.run(
        [
            *cluster.git_server.git_env(root)["GIT_SSH_COMMAND"].split(),
            "-p",
            str(cluster.state.ports["ssh"]),
        ]
        + [f"{cluster.git_server.git_user}@127.0.0.1", "cat /etc/hostname"],
        capture_output=True,
        text=True,
    )
    assert shell.returncode != 0 and not shell.stdout, "the key runs a command"


def seaweedfs_ports(cluster: Cluster) -> dict[str, int]:
    """The HTTP port of each SeaweedFS part, as its running command line has them."""
    args = cmdline(cluster.state.pids["seaweedfs"][0]).split()
    found = (re.fullmatch(r"-(master|volume|filer|s3)\.port=(\d+)", arg) for arg in args)
    return {m.group(1): int(m.group(2)) for m in found if m}


def unsigned(method: str, url: str, body: bytes | None = b"planted") -> int:
    """The HTTP status of a request with no credentials at all."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_only_signed_requests_write_the_object_store(cluster_started) -> None:
    import s3fs

    cluster = cluster_started[0]
    ports = seaweedfs_ports(cluster)
    assert set(ports) == {"master", "volume", "filer", "s3"}, ports
    key = f"{BUCKET}/planted-{secrets.token_hex(4)}"
    refused = {
        "S3 PUT": unsigned("PUT", f"{cluster.seaweedfs.s3_endpoint}/{key}"),
        "S3 GET of the bucket": unsigned("GET", f"{cluster.seaweedfs.s3_endpoint}/{BUCKET}", None),
        "filer PUT": unsigned("PUT", f"http://127.0.0.1:{ports['filer']}/buckets/{key}"),
        "filer GET of the bucket": unsigned(
            "GET", f"http://127.0.0.1:{ports['filer']}/buckets/{BUCKET}/", None
        ),
        "volume PUT": unsigned("PUT", f"http://127.0.0.1:{ports['volume']}/1,01637037d6"),
    }
    accepted = {what: status for what, status in refused.items() if status not in (401, 403)}
    assert not accepted, f"unsigned requests not refused (HTTP status): {accepted}"
    wrong = s3fs.S3FileSystem(
        key=cluster.state.secrets.s3_access_key,
        secret="not-" + cluster.state.secrets.s3_secret_key,
        client_kwargs={"endpoint_url": cluster.seaweedfs.s3_endpoint},
        skip_instance_cache=True,
    )
    with pytest.raises(PermissionError):
        wrong.pipe(f"{key}-wrong", b"planted")
    right = cluster.seaweedfs.s3()
    right.pipe(f"{key}-signed", b"ok")  # the cluster's keys still write
    assert right.cat(f"{key}-signed") == b"ok"
    right.rm(f"{key}-signed")
    assert not [k for k in right.find(BUCKET) if "planted" in k], "an unsigned write landed"


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")


def speaks_http2(sock: socket.socket) -> bool:
    """Whether the peer answers HTTP/2's preface with a SETTINGS frame (gRPC's first reply)."""
    try:
        sock.sendall(H2_PREFACE)
        head = sock.recv(9)
    except OSError:  # refused: a TLS alert, a reset, a timeout
        return False
    return len(head) == 9 and head[3] == 0x04


def serves_a_stranger(port: int) -> str | None:
    """How a client with no certificate of the cluster gets a gRPC answer, if it does."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
        if speaks_http2(plain):
            return "in plain text"
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw) as tls:
                if speaks_http2(tls):
                    return "over TLS without a client certificate"
        except ssl.SSLError:
            pass
    return None


def test_seaweedfs_grpc_serves_only_its_own_parts(cluster_started) -> None:
    args = cmdline(cluster_started[0].state.pids["seaweedfs"][0]).split()
    grpc_ports = {
        m.group(1): int(m.group(2))
        for m in (re.fullmatch(r"-(\w+)\.port\.grpc=(\d+)", arg) for arg in args)
        if m
    }
    assert set(grpc_ports) == {"master", "volume", "filer", "s3"}, grpc_ports
    served = {part: how for part, port in grpc_ports.items() if (how := serves_a_stranger(port))}
    assert not served, f"SeaweedFS gRPC answers a client without the certificate: {served}"


def test_postgres_keeps_fsync_on(cluster_started) -> None:
    import psycopg2

    conn = psycopg2.connect(cluster_started[0].postgres.dsn("airflow"))
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW fsync")
            assert cur.fetchone() == ("on",)
    finally:
        conn.close()


def test_the_cluster_files_are_their_owners_only(story: Story) -> None:
    data = story.cluster.data
    # Where the cluster writes files itself (the rest live in 0700 folders, some written
    # with modes of their own: DVC's read-only cache, SeaweedFS's volume info).
    owned_files = (data, data / "ssh", data / "airflow")
    weed_config = {".json", ".toml", ".crt", ".key"}
    # The data folder itself: PostgreSQL's group may enter it, nobody else may.
    mode = data.stat().st_mode
    open_to_others = [f"{oct(mode & 0o777)} {data}"] if mode & 0o067 else []
    task_logs = 0
    for folder, dirs, files in os.walk(data):
        here = Path(folder)
        for path in [here / d for d in dirs] + [here / f for f in files]:
            info = path.lstat()
            is_log = path.suffix == ".log" or path.is_relative_to(story.cluster.airflow.logs_dir)
            task_logs += is_log and path.is_relative_to(story.cluster.airflow.logs_dir)
            checked = stat.S_ISDIR(info.st_mode) or is_log or here in owned_files
            checked |= here == data / "seaweedfs" and path.suffix in weed_config
            if checked and not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o077:
                open_to_others.append(f"{oct(info.st_mode & 0o777)} {path.relative_to(data)}")
    assert task_logs, "no task log was written: the check would prove nothing"
    assert not open_to_others, "readable by others:\n" + "\n".join(open_to_others[:40])


def test_make_cluster_repairs_each_fault_by_restarting_that_part_alone(story: Story) -> None:
    for fault, repair in story.repairs.items():
        part = story.crash["worker"] if fault == "worker" else fault
        assert repair["returncode"] == 0, f"after killing {part}:\n{repair['output'][-3000:]}"
        assert f"is running: restarting {part}\n" in repair["output"], repair["output"][-3000:]
        assert repair["changed"] == [part], f"after killing {part}, restarted {repair['changed']}"


def test_no_task_instance_is_left_running(story: Story) -> None:
    cluster = story.cluster
    left = [
        f"{dag_id}/{run['dag_run_id']}/{ti['task_id']}: {ti['state']} on {ti['hostname']}"
        for dag_id in EXPECTED_DAGS
        for run in cluster.rest.runs(dag_id)
        for ti in cluster.rest.task_instances(dag_id, run["dag_run_id"])
        if ti["state"] in ("running", "queued", "scheduled", "up_for_retry")
    ]
    assert not left, "task instances not finished:\n" + "\n".join(left)


def test_a_hung_s3_endpoint_fails_the_step_in_time_and_the_retry_succeeds(story: Story) -> None:
    hang = story.s3_hang
    log = hang["first_try_log"]
    assert hang["failed_after"] < S3_HANG_BOUND, (
        f"the hung step failed after {hang['failed_after']:.0f} s; try 1's log:\n{log[-6000:]}"
    )
    endpoint = f"127.0.0.1:{story.cluster.state.ports['s3']}"
    error_lines = [ln for ln in log.splitlines() if "repro_evaluate: the command failed" in ln]
    assert error_lines, f"no error line naming the failure in try 1's log:\n{log[-3000:]}"
    assert endpoint in error_lines[-1], error_lines[-1][:1000]
    assert hang["task"]["state"] == "success" and hang["task"]["try_number"] == 2, hang["task"]
    assert hang["run"]["state"] == "success", hang["run"]


def test_the_triggerer_heartbeats_in_the_metadata_db(cluster_started) -> None:
    import psycopg2

    conn = psycopg2.connect(cluster_started[0].postgres.dsn("airflow"))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT hostname, EXTRACT(EPOCH FROM now() - latest_heartbeat) FROM job "
                "WHERE job_type = 'TriggererJob' AND state = 'running' "
                "ORDER BY latest_heartbeat DESC LIMIT 1"
            )
            found = cur.fetchone()
    finally:
        conn.close()
    assert found, "no running TriggererJob in the job table"
    assert float(found[1]) < 30, f"the triggerer's last heartbeat is {found[1]} s old"


def test_a_trigger_on_a_taken_logical_date_names_the_run_in_the_way(story: Story) -> None:
    rest = story.cluster.rest
    run_id = story.inference[0][0]
    existing = rest.api("GET", f"/dags/batch_inference/dagRuns/{run_id}")
    when = datetime.fromisoformat(existing["logical_date"])
    runs_before = len(rest.runs("batch_inference"))
    with pytest.raises(RunConflict) as on_date:
        rest.trigger("batch_inference", "cluster_same_date", logical_date=when)
    assert str(on_date.value) == (
        f"batch_inference has a run for logical date {when.isoformat()} already ({run_id!r}, "
        f"manual, {existing['state']}): a DAG has one run per logical date; trigger with "
        "another logical date, or none (the time of the trigger)"
    )
    with pytest.raises(RunConflict) as on_id:
        rest.trigger("batch_inference", run_id)
    assert str(on_id.value).startswith(f"batch_inference has a run {run_id!r} already")
    assert len(rest.runs("batch_inference")) == runs_before  # nothing was created


def cluster_command(cluster: Cluster, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "scripts.cluster", *args, "--data", str(cluster.data)]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    cluster.state.load()
    return done


def test_make_cluster_brings_back_every_other_part_killed(story: Story) -> None:
    cluster = story.cluster
    killed = ["seaweedfs", "sshd", "fake-kma", "api-server", "dag-processor"]
    for part in killed:  # the leader only: what is left of its group must not matter
        os.kill(cluster.state.pids[part][0], signal.SIGKILL)
    t0 = time.monotonic()
    repair = make_cluster(cluster, killed[0])
    story.timings["five_parts_back"] = time.monotonic() - t0
    assert repair["returncode"] == 0, repair["output"][-3000:]
    assert f"is running: restarting {', '.join(killed)}\n" in repair["output"], repair["output"]
    assert repair["changed"] == sorted(killed), repair["changed"]
    assert story.cluster.rest.dag_ids() == EXPECTED_DAGS
    assert bucket_md5s(cluster), "the S3 remote lost its objects"


def test_a_restart_keeps_the_ports_the_workers_and_a_persons_clone(story: Story) -> None:
    cluster = story.cluster
    ports, workers = dict(cluster.state.ports), list(cluster.workers)
    assert len(workers) == WORKERS
    t0 = time.monotonic()
    down = cluster_command(cluster, "down")
    assert down.returncode == 0, down.stderr
    up = cluster_command(cluster, "up")
    story.timings["stop_and_start"] = time.monotonic() - t0
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    assert cluster.state.ports == ports
    assert cluster.workers == workers
    status = cluster_command(cluster, "status")
    assert status.returncode == 0, status.stdout
    running = [ln.split()[0] for ln in status.stdout.splitlines() if ln.endswith(" running")]
    assert set(workers) | {"triggerer", "scheduler"} <= set(running), status.stdout
    # The person's clone names the server's old address (URL and known_hosts): it pushes.
    person_pushes_params(cluster, story.person, PERSONS_N_ESTIMATORS + 2)

    before = dict(cluster.state.pids)
    again = cluster_command(cluster, "restart", "triggerer")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    changed = {name for name, pid in cluster.state.pids.items() if before.get(name) != pid}
    assert changed == {"triggerer"}, changed
    assert set(cluster.state.pids) == set(before)


def test_make_cluster_twice_starts_nothing_new(story: Story) -> None:
    before = dict(story.cluster.state.pids)
    up = subprocess.run(
        [sys.executable, "-m", "scripts.cluster", "up", "--data", str(story.cluster.data)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert up.returncode == 0, up.stderr
    assert "already up" in up.stdout and story.cluster.rest.url in up.stdout, up.stdout
    assert Cluster(data=story.cluster.data).state.pids == before


def test_stopping_leaves_no_process_behind(story: Story) -> None:
    cluster = story.cluster
    pids = [pid for pid, _ in cluster.state.pids.values()]
    story.timings["total_before_stop"] = sum(story.timings.values())
    t0 = time.monotonic()
    down = [sys.executable, "-m", "scripts.cluster", "down", "--data", str(cluster.data)]
    result = subprocess.run(down, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    story.timings["stop"] = time.monotonic() - t0
    assert result.returncode == 0, result.stderr
    for proc in cluster.state.procs.values():
        proc.poll()
    assert not [pid for pid in pids if is_running(pid)], "a recorded process still runs"
    assert not pids_with_env(MARKER, str(cluster.data)), "a process of the cluster still runs"
    again = subprocess.run(down, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "No cluster is running" in again.stdout, again.stdout
    timings = ", ".join(f"{k} {v:.0f}" for k, v in story.timings.items())
    killed = f"{story.crash['worker']} killed during `{story.crash['command'][:80]}`"
    print(f"\ncluster test timings (s): {timings}; {killed}")
