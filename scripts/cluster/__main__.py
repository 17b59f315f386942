"""The cluster's command line: ``python -m scripts.cluster up|down|status|restart``.

    up [--workers N]   start it; on a running cluster restart only the parts that are down
                       (and start or stop workers to make N)
    restart PART ...   stop one part (or several) by pid and start it again
    status             every part, its pid, the URLs
    down               stop every process it started

``--data DIR`` names the cluster's folder (``.cluster/``). ``make cluster [WORKERS=N]``
runs ``up``, ``make cluster-stop`` runs ``down``; ``up`` uses the real KMA when
``KMA_SERVICE_KEY`` is set and Slack when ``AIRFLOW_CONN_MY_WEBHOOK`` is set.
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
MAX_WORKERS = 16  # each is a Celery worker with its own workspace on this one machine


def worker_count(text: str) -> int:
    """``--workers``'s value: a whole number from 1 to MAX_WORKERS."""
    if not (text.isdigit() and len(text) <= 2 and 1 <= int(text) <= MAX_WORKERS):
        raise argparse.ArgumentTypeError(
            f"{text[:20]!r}: give the number of workers, 1 to {MAX_WORKERS}"
        )
    return int(text)


def slack_webhook_from_environment() -> str | None:
    """The webhook URL of ``AIRFLOW_CONN_MY_WEBHOOK`` (URI or JSON), if the user set it."""
    raw = os.environ.get("AIRFLOW_CONN_MY_WEBHOOK")
    if not raw:
        return None
    from airflow.models.connection import Connection

    conn = Connection.from_json(raw) if raw.lstrip().startswith("{") else Connection(uri=raw)
    return conn.password or conn.host or None


def from_environment(data: Path, workers: int | None = None) -> Cluster:
    """The cluster ``make cluster`` runs: the real KMA when ``KMA_SERVICE_KEY`` is set (else
    the fake), Slack when ``AIRFLOW_CONN_MY_WEBHOOK`` is set (else no alerts), ``workers``
    workers (None: as many as it has)."""
    kma_key = os.environ.get("KMA_SERVICE_KEY")
    kma = (os.environ.get("KMA_BASE_URL") or KMA_REAL_URL, kma_key) if kma_key else None
    webhook = slack_webhook_from_environment()
    return Cluster(data=data, slack_webhook=webhook, kma=kma, worker_count=workers)


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


RESTART_ROUNDS = 3  # a part that exits while the others come back is restarted too
KEEP_RUNNING = (
    "The other parts keep running: `make cluster` tries again, `make cluster-stop` stops all."
)


def up(cluster: Cluster) -> int:
    if cluster.is_up() and not cluster.extra_workers():
        print(f"The cluster in {cluster.data} is already up.\n{describe(cluster)}")
        return 0
    if any(cluster.state.running().values()):
        return restart_down(cluster)
    if cluster.state.pids:
        cluster.stop()  # whatever is left of a cluster whose every recorded process exited
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


def settle(cluster: Cluster) -> None:
    """Restart whatever is down until every part is ready (bounded): a part can exit while
    another comes back (a scheduler whose DB connection a PostgreSQL restart cut)."""
    for attempt in range(1, RESTART_ROUNDS + 1):
        cluster.restart_down_parts()
        try:
            cluster.wait_ready()
            return
        except ClusterError:
            if attempt == RESTART_ROUNDS:
                raise


def restart_down(cluster: Cluster) -> int:
    """``up`` on a running cluster: restart the parts that are down, leave the rest (and
    their tasks) running; on failure say what to do, and stop nothing."""
    down, extra = cluster.down_parts(), cluster.extra_workers()
    changes = [f"restarting {', '.join(down)}"] if down else []
    changes += [f"stopping {', '.join(extra)}"] if extra else []
    print(f"The cluster in {cluster.data} is running: {'; '.join(changes)}", flush=True)
    try:
        settle(cluster)
    except (ClusterError, TimeoutError) as exc:
        print(f"cluster: {exc}\n{KEEP_RUNNING}", file=sys.stderr)
        return 1
    print(f"Cluster up.\n{describe(cluster)}")
    return 0


def restart(cluster: Cluster, names: list[str]) -> int:
    """Restart the parts ``names`` on purpose (by pid), then wait until the cluster is ready."""
    if not any(cluster.state.running().values()):
        print(
            f"No cluster is running in {cluster.data}: `make cluster` starts it.", file=sys.stderr
        )
        return 1
    try:
        parts = [cluster.part_name(name) for name in names]
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    print(f"Restarting {', '.join(parts)} in {cluster.data} ...", flush=True)
    try:
        parts = cluster.restart(parts)
        settle(cluster)
    except (ClusterError, TimeoutError) as exc:
        print(f"cluster: {exc}\n{KEEP_RUNNING}", file=sys.stderr)
        return 1
    print(f"Restarted {', '.join(parts)}.")
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
    running = cluster.state.running()
    for name in [*cluster.parts(), *cluster.extra_workers()]:
        if name not in cluster.state.pids:
            print(f"{name:<14} {'':<12} not started")
            continue
        pid = cluster.state.pids[name][0]
        print(f"{name:<14} pid {pid:<8} {'running' if running[name] else 'EXITED'}")
    print(describe(cluster))
    return 0 if cluster.is_up() else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.cluster", description=scripts.cluster.__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["up", "down", "status", "restart"])
    parser.add_argument("parts", nargs="*", help="restart: the parts (as `status` names them)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the cluster's folder")
    parser.add_argument(
        "--workers",
        type=worker_count,
        help=f"up: how many Celery workers (1-{MAX_WORKERS}; default: as many as it has)",
    )
    args = parser.parse_args()
    if (args.command == "restart") != bool(args.parts):
        parser.error("restart takes the parts to restart; the other commands take none")
    cluster = from_environment(args.data, args.workers if args.command == "up" else None)
    if args.command == "restart":
        sys.exit(restart(cluster, args.parts))
    sys.exit({"up": up, "down": down, "status": status}[args.command](cluster))


if __name__ == "__main__":
    main()
