"""The cluster's command line and state on a data folder, without starting any server.

``python -m scripts.cluster`` reads ``cluster.json`` and ``secrets.json``: a folder with
no cluster says so, one whose recorded process has exited is reported as such, and the
cluster's REST client points at the recorded API port with the folder's admin password.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from batchserving import PROJECT_ROOT
from scripts.airflow_api import AirflowRestClient
from scripts.cluster.cluster import Cluster
from scripts.cluster.state import Secrets

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
