"""The cluster's command line and state on a data folder, without starting any server.

``python -m scripts.cluster`` reads ``cluster.json`` and ``secrets.json``: a folder with
no cluster says so, one whose recorded process has exited is reported as such, and the
cluster's REST client points at the recorded API port with the folder's admin password.
A recorded port that another process holds stops the start with a message naming both;
``status`` lists every part and recorded worker; ``restart`` and ``--workers`` refuse
what they do not know.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from batchserving import PROJECT_ROOT
from scripts.airflow_api import AirflowRestClient
from scripts.cluster.cluster import Cluster
from scripts.cluster.state import Secrets
from scripts.processes import is_running, start_time

PORTS = {"postgres": 15432, "redis": 16379, "s3": 18333, "ssh": 12222, "api": 18080, "kma": 1}


def cluster_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.cluster", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def folder_with_an_exited_process(data: Path) -> tuple[Secrets, int]:
    """A data folder whose cluster.json records a process that has exited since."""
    data.mkdir()
    secrets = Secrets.load_or_create(data / "secrets.json")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    state = {"ports": PORTS, "pids": {"redis": [proc.pid, 1]}, "fake_kma_url": None}
    (data / "cluster.json").write_text(json.dumps(state), encoding="utf-8")
    return secrets, proc.pid


def test_a_folder_without_a_cluster_says_so(tmp_path: Path) -> None:
    data = tmp_path / "none"
    status = cluster_command("status", "--data", str(data))
    assert status.returncode == 1, status.stderr
    assert status.stdout.strip() == f"No cluster is running in {data}."
    down = cluster_command("down", "--data", str(data))
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == f"No cluster is running in {data}."
    assert not data.exists()  # neither command made the folder


def test_status_names_the_process_that_exited(tmp_path: Path) -> None:
    data = tmp_path / "data"
    secrets, pid = folder_with_an_exited_process(data)
    status = cluster_command("status", "--data", str(data))
    assert status.returncode == 1, status.stderr
    assert f"redis          pid {pid:<8} EXITED" in status.stdout
    assert f"Airflow UI      http://127.0.0.1:{PORTS['api']}" in status.stdout
    assert f"login admin / {secrets.admin_password}" in status.stdout
    assert f"Celery broker   redis://127.0.0.1:{PORTS['redis']}/0" in status.stdout
    assert secrets.redis_password not in status.stdout


def test_the_cluster_has_a_rest_client_of_its_recorded_api_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    secrets, _ = folder_with_an_exited_process(data)
    cluster = Cluster(data=data)
    assert not isinstance(cluster, AirflowRestClient)
    assert cluster.rest.url == f"http://127.0.0.1:{PORTS['api']}"
    assert cluster.rest.password == secrets.admin_password
    assert cluster.state.running() == {"redis": False}
    assert not cluster.is_up()


def stopped_cluster_folder(data: Path, ports: dict[str, int], **state: object) -> Secrets:
    """A data folder of a cluster that was stopped: its ports recorded, no process."""
    data.mkdir()
    secrets = Secrets.load_or_create(data / "secrets.json")
    recorded = {"ports": ports, "pids": {}, "fake_kma_url": None, **state}
    (data / "cluster.json").write_text(json.dumps(recorded), encoding="utf-8")
    return secrets


def test_a_recorded_port_that_is_taken_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        stopped_cluster_folder(data, {**PORTS, "postgres": port})
        up = cluster_command("up", "--data", str(data))
    assert up.returncode == 1, up.stdout
    reason = up.stderr.strip().splitlines()[0]
    assert reason.startswith(f"cluster: port {port} (postgres, recorded for postgres in "), reason
    assert f"is taken by pid {os.getpid()} (" in reason, reason
    assert "Traceback" not in up.stderr
    recorded = json.loads((data / "cluster.json").read_text(encoding="utf-8"))
    assert recorded["ports"]["postgres"] == port  # kept for the next start, not replaced
    assert recorded["pids"] == {}  # nothing was started


def test_status_lists_every_recorded_worker_and_the_triggerer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    workers = ["worker-1", "worker-2", "worker-3"]
    stopped_cluster_folder(data, PORTS, workers=workers)
    me = [os.getpid(), start_time(os.getpid())]  # a live process recorded as a part
    state = json.loads((data / "cluster.json").read_text(encoding="utf-8"))
    state["pids"] = {"worker-3": me}
    (data / "cluster.json").write_text(json.dumps(state), encoding="utf-8")
    status = cluster_command("status", "--data", str(data))
    lines = status.stdout.splitlines()
    assert f"worker-3       pid {os.getpid():<8} running" in lines, status.stdout
    for part in ("worker-1", "worker-2", "triggerer", "scheduler", "postgres"):
        assert f"{part:<14} {'':<12} not started" in lines, status.stdout
    assert f"workers         {', '.join(workers[:1])} (" in status.stdout
    assert status.returncode == 1  # not every part runs


def test_restart_names_the_parts_it_knows(tmp_path: Path) -> None:
    data = tmp_path / "data"
    stopped_cluster_folder(data, PORTS, pids={"redis": [os.getpid(), start_time(os.getpid())]})
    unknown = cluster_command("restart", "nosuch", "--data", str(data))
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        "cluster: no part 'nosuch': choose one of postgres, redis, seaweedfs, sshd, fake-kma, "
        "api-server, scheduler, dag-processor, triggerer, worker-1, worker-2"
    )
    assert is_running(os.getpid())
    nothing = cluster_command("restart", "--data", str(data))
    assert nothing.returncode == 2 and "restart takes the parts" in nothing.stderr


def test_workers_takes_a_small_whole_number(tmp_path: Path) -> None:
    for bad in ("0", "three", "99"):
        up = cluster_command("up", "--workers", bad, "--data", str(tmp_path / "none"))
        assert up.returncode == 2, up.stdout
        assert "give the number of workers, 1 to 16" in up.stderr, up.stderr
    assert not (tmp_path / "none").exists()
