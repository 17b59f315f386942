"""The cluster's command line: ``python -m scripts.cluster up|down|status [--data DIR]``.

``make cluster`` runs ``up``, ``make cluster-stop`` runs ``down``; ``up`` uses the real KMA
when ``KMA_SERVICE_KEY`` is set and Slack when ``AIRFLOW_CONN_MY_WEBHOOK`` is set.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import scripts.cluster
from scripts.airflow_api import ADMIN
from scripts.cluster.cluster import Cluster
from scripts.cluster.state import DEFAULT_DATA, ClusterError

KMA_REAL_URL = "https://apis.data.go.kr/1360000/VilageFcstInfoService_2.0"


def slack_webhook_from_environment() -> str | None:
    """The webhook URL of ``AIRFLOW_CONN_MY_WEBHOOK`` (URI or JSON), if the user set it."""
    raw = os.environ.get("AIRFLOW_CONN_MY_WEBHOOK")
    if not raw:
        return None
    from airflow.models.connection import Connection

    conn = Connection.from_json(raw) if raw.lstrip().startswith("{") else Connection(uri=raw)
    return conn.password or conn.host or None


def from_environment(data: Path) -> Cluster:
    """The cluster ``make cluster`` runs: the real KMA when ``KMA_SERVICE_KEY`` is set (else
    the fake), Slack when ``AIRFLOW_CONN_MY_WEBHOOK`` is set (else no alerts)."""
    kma_key = os.environ.get("KMA_SERVICE_KEY")
    kma = (os.environ.get("KMA_BASE_URL") or KMA_REAL_URL, kma_key) if kma_key else None
    return Cluster(data=data, slack_webhook=slack_webhook_from_environment(), kma=kma)


def describe(cluster: Cluster) -> str:
    """What ``make cluster`` prints: where each part is, and how to stop it."""
    state, airflow = cluster.state, cluster.airflow
    fake = f"{state.fake_kma_url} (fake KMA: simulated forecasts)"
    workers = ", ".join(f"{w} ({airflow.workspace(w)})" for w in cluster.workers)
    lines = [
        f"Airflow UI      {cluster.rest.url}  (login {ADMIN} / {cluster.rest.password})",
        f"model repo      {cluster.git_server.model_repo_url}",
        f"DVC remote      {cluster.seaweedfs.dvc_remote_url} at {cluster.seaweedfs.s3_endpoint}",
        f"metadata DB     postgresql://127.0.0.1:{state.ports['postgres']}/airflow",
        f"Celery broker   redis://127.0.0.1:{state.ports['redis']}/0",
        f"weather         {'KMA' if cluster.kma else fake}",
        f"workers         {workers}",
        f"logs            {cluster.data / 'logs'}, task logs in {airflow.logs_dir}",
        "stop            make cluster-stop",
    ]
    return "\n".join(lines)


def up(cluster: Cluster) -> int:
    if cluster.is_up():
        print(f"The cluster in {cluster.data} is already up.\n{describe(cluster)}")
        return 0
    if cluster.state.pids:
        stopped = ", ".join(name for name, alive in cluster.state.running().items() if not alive)
        print(f"The cluster in {cluster.data} is partly down ({stopped} exited): restarting it")
        cluster.stop()
    print(f"Starting the cluster in {cluster.data} ...", flush=True)
    try:
        cluster.start()
        cluster.wait_ready()
    except (ClusterError, TimeoutError) as exc:
        cluster.stop()
        print(f"cluster: {exc}\nEvery process it started is stopped again.", file=sys.stderr)
        return 1
    except BaseException:
        cluster.stop()  # a bug or Ctrl-C: leave nothing running, then show the traceback
        raise
    print(f"Cluster up in {cluster.timings['total']:.0f} s.\n{describe(cluster)}")
    return 0


def down(cluster: Cluster) -> int:
    if not cluster.state.pids:
        print(f"No cluster is running in {cluster.data}.")
        return 0
    killed = cluster.stop()
    note = f" ({len(killed)} needed SIGKILL)" if killed else ""
    print(f"Cluster in {cluster.data} stopped: no process of it is left{note}.")
    return 0


def status(cluster: Cluster) -> int:
    if not cluster.state.pids:
        print(f"No cluster is running in {cluster.data}.")
        return 1
    for name, alive in cluster.state.running().items():
        pid = cluster.state.pids[name][0]
        print(f"{name:<14} pid {pid:<8} {'running' if alive else 'EXITED'}")
    print(describe(cluster))
    return 0 if cluster.is_up() else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.cluster", description=scripts.cluster.__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the cluster's folder")
    args = parser.parse_args()
    cluster = from_environment(args.data)
    sys.exit({"up": up, "down": down, "status": status}[args.command](cluster))


if __name__ == "__main__":
    main()
