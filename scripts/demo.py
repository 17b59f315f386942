"""``make demo``: the whole job under Airflow's real scheduler, then a summary.

Starts Airflow's scheduler, DAG processor, triggerer and API server on the project's Airflow home
(``.airflow/``, as ``make airflow`` uses), triggers ``simple_train`` → ``model_selection``
→ ``batch_inference`` → ``crawling_weather`` → ``monitor_predictions`` through the REST
API one after another (batch_inference for this time yesterday, the day the last one
monitors), waits for each, and stops what it started (by pid). The runs stay in the metadata DB with
their task logs, XComs and asset events: ``make airflow`` shows them. The scheduler runs
with ``use_job_schedule`` off, so only the demo's own runs happen, and each DAG goes back
to paused (as new DAGs start) when its run is over.

The model repo is the one every local command uses (``MODEL_REPO``, else ``.model-repo/``,
made on first use). Without a ``kma_api`` connection the local fake KMA server provides
the weather, and the demo says plainly that it is simulated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from batchserving import PROJECT_ROOT
from batchserving.core.names import (
    MONITORING_DIR,
    PREDICTIONS_DIR,
    SERVING_DIR,
    WEATHER_HISTORY_DIR,
)
from batchserving.registry.workspace import NotAModelRepo, describe, ensure_workspace
from batchserving.serving.deployment import read_record
from scripts.airflow_server import USER, AirflowServer

DAG_IDS = [
    "simple_train",
    "model_selection",
    "batch_inference",
    "crawling_weather",
    "monitor_predictions",
]
KST = timezone(timedelta(hours=9))
FAKE_KEY = "demo-simulated-key"
UI_URL = "http://127.0.0.1:8080"
RUN_TIMEOUT = 600  # seconds for one DAG run (they take well under a minute here)
# The project's Airflow home (the Makefile exports it; the same default otherwise).
AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME") or PROJECT_ROOT / ".airflow")
# Settings of the user's environment that the Airflow processes must see.
PASSED_ON = ("AIRFLOW_CONN_", "MODEL_REPO_URL", "DVC_REMOTE_URL", "AWS_")
STARTED = time.monotonic()


def say(text: str = "") -> None:
    print(text, flush=True)


def run(cmd: list[str], cwd: Path = PROJECT_ROOT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, **kwargs)


def has_connection(conn_id: str) -> bool:
    """Whether Airflow knows ``conn_id`` (environment or metadata DB); never prints it."""
    if os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}"):
        return True
    return run(["airflow", "connections", "get", conn_id, "-o", "json"]).returncode == 0


@contextmanager
def fake_kma_server() -> Generator[str, None, None]:
    """The local fake KMA server (simulated forecasts); yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchserving.weather.fake_kma", "--port", "0", "--key", FAKE_KEY],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            sys.exit("demo: the fake KMA server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def server_env() -> dict[str, str]:
    """What the Airflow processes need beyond the launcher's own settings."""
    passed = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ON)}
    # Only the demo's triggered runs: no scheduled run starts while the DAGs are unpaused.
    return {**passed, "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}


def monitored_day() -> str:
    """The KST day the demo's monitor_predictions run checks: yesterday's."""
    return (datetime.now(KST).date() - timedelta(days=1)).isoformat()


def logical_date_of(dag_id: str) -> datetime:
    """The run's logical date: now, but for batch_inference this time yesterday.

    monitor_predictions monitors the KST day before its logical date, and Airflow runs no
    logical date in the future: so the demo's predictions are those of yesterday's run at
    this time, and monitor_predictions, run now, monitors that day.
    """
    now = datetime.now(UTC)
    return now - timedelta(days=1) if dag_id == "batch_inference" else now


def trigger_and_wait(server: AirflowServer, dag_id: str) -> tuple[dict, dict[str, str]]:
    """Unpause, trigger through the REST API, wait, pause again: (the run, task states)."""
    run_id = f"demo__{datetime.now(UTC).strftime('%Y-%m-%dT%H-%M-%S')}"
    server.rest.unpause(dag_id)
    try:
        server.rest.trigger(dag_id, run_id, logical_date=logical_date_of(dag_id))
        finished = server.rest.wait_for_runs({dag_id: run_id}, RUN_TIMEOUT)[dag_id]
    finally:
        server.rest.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})
    states = {t["task_id"]: t["state"] for t in server.rest.task_instances(dag_id, run_id)}
    return finished, states


def run_dag(server: AirflowServer, dag_id: str) -> bool:
    """One DAG run, and one line about it on the screen."""
    started = time.monotonic()
    finished, states = trigger_and_wait(server, dag_id)
    shown = ", ".join(f"{task} {state}" for task, state in states.items())
    verdict = "succeeded" if finished["state"] == "success" else "FAILED"
    say(f"  {dag_id:<18} {verdict}  {time.monotonic() - started:5.0f} s   ({shown})")
    return finished["state"] == "success"


def summary(repo: Path) -> None:
    """What the run left behind, and where to look further."""
    tags = run(["git", "tag", "--list", "iris-model@*", "--sort=v:refname"], cwd=repo)
    say("\nSummary")
    say(f"  model repo          {repo}")
    say(f"  versions registered {' '.join(tags.stdout.split()) or 'none'}")
    try:
        record = read_record(repo / SERVING_DIR)
    except FileNotFoundError:
        say("  prod version        none deployed")
    else:
        metrics = record.get("metrics", {})
        say(
            f"  prod version        {record['version']} (commit {record['commit'][:12]}): "
            f"accuracy {metrics.get('accuracy')}, macro F1 {metrics.get('f1_macro')}"
        )
    predictions = sorted((repo / PREDICTIONS_DIR).glob("*/*.csv"))
    if predictions:
        rows = len(predictions[-1].read_text(encoding="utf-8").splitlines()) - 1
        say(f"  latest predictions  {predictions[-1]} ({rows} rows)")
    else:
        say("  latest predictions  none")
    say(f"  weather stored      {weather_summary(repo)}")
    say(f"  monitoring          {monitoring_summary(repo)}")


def monitoring_summary(repo: Path) -> str:
    """The monitored day's figures and its report, from the day's summary."""
    day = monitored_day()
    report = repo / MONITORING_DIR / day / "report.html"
    try:
        done = json.loads(report.with_name("summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"no report for {day}"
    drift = "drift detected" if done["drift"]["detected"] else "no drift"
    return f"{day} (KST): {done['rows']} rows, {drift}, accuracy {done['accuracy']}; {report}"


def weather_summary(repo: Path) -> str:
    """Issuances fetched and forecast rows kept, from the preprocess stage's outputs."""
    raw = sorted((repo / "output/weather/raw").glob("*.json"))
    if not raw:
        return "none"
    import pandas as pd

    history = repo / WEATHER_HISTORY_DIR
    rows = sum(len(pd.read_parquet(p)) for p in history.glob("*.parquet"))
    return f"{len(raw)} issuance(s) (latest {raw[-1].stem}), {rows} forecast values in history"


def look_further(repo: Path, password: str) -> None:
    say("\nLook further:")
    say(f"  make airflow        then open {UI_URL}  (login {USER} / {password})")
    say("                      the runs above with their graphs, task logs, XComs and assets")
    say(f"  cd {repo} && export PATH={PROJECT_ROOT / '.venv/bin'}:$PATH")
    say("  gto show  |  git tag  |  dvc metrics show  |  dvc exp show  |  dvc plots show")
    say("  dvc metrics diff iris-model@v0.0.1 HEAD   # once two versions exist")


def run_all(repo: Path, use_fake: bool) -> tuple[bool, str]:
    """Start Airflow, run the five DAGs in order, stop Airflow; (all succeeded, password)."""
    env = server_env()
    with fake_kma_server() if use_fake else nullcontext() as fake_url:
        if fake_url:
            say(
                f"demo: no `kma_api` connection: weather comes from the local FAKE KMA server at "
                f"{fake_url}. The forecasts are SIMULATED, not real KMA data."
            )
            conn = {"conn_type": "http", "host": fake_url, "password": FAKE_KEY}
            env["AIRFLOW_CONN_KMA_API"] = json.dumps(conn)
        server = AirflowServer(
            home=AIRFLOW_HOME,
            model_repo=repo,
            extra_env=env,
            fernet=None,  # the home's airflow.cfg has them, as `make airflow` uses them
            jwt_secret=None,  # and the password file is the one `make airflow` reads
        )
        try:
            say(
                "demo: starting Airflow (scheduler, DAG processor, triggerer, "
                f"API server on {server.url})"
            )
            server.start()
            server.rest.wait_for_dags(set(DAG_IDS))
            if server.rest.import_errors():
                sys.exit(f"demo: DAG import errors: {server.rest.import_errors()}")
            say(f"demo: Airflow up in {time.monotonic() - STARTED:.0f} s; running the five DAGs")
            results = [run_dag(server, dag_id) for dag_id in DAG_IDS]
        finally:
            server.stop()
    return all(results), server.password


def main() -> None:
    try:
        repo = ensure_workspace()
    except NotAModelRepo as exc:
        sys.exit(f"demo: {exc}")
    say(f"demo: {describe(repo)}")
    if not has_connection("my_webhook"):
        say("demo: no Slack connection `my_webhook`: alerts are skipped (see README)")
    ok, password = run_all(repo, use_fake=not has_connection("kma_api"))
    summary(repo)
    look_further(repo, password)
    say(f"\ndemo: done in {time.monotonic() - STARTED:.0f} s")
    if not ok:
        sys.exit("demo: a DAG failed; `make airflow` shows its task logs")


if __name__ == "__main__":
    main()
