"""One definition of the Airflow configuration: make airflow, the launcher and the cluster agree.

``make airflow`` and ``make run`` run their command through ``python -m
scripts.airflow_settings``; the launcher (make demo, e2e tests) and the cluster build
their configuration from the same functions. What differs between them is only what
must: the executor, the database, the ports, the secrets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from batchserving import DAGS_FOLDER, PLUGINS_FOLDER, PROJECT_ROOT
from scripts.airflow_server import AirflowServer
from scripts.airflow_settings import as_env, project_settings
from tests.unit.test_cluster_cli import folder_with_an_exited_process

# What may differ between one Airflow and another: each picks its own free log ports,
# and the passwords file lives in its own home.
PER_INSTALLATION = {
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
}
PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


def make_airflow_env(home: Path, port: int, extra: dict[str, str] | None = None) -> dict:
    """The environment ``make airflow`` gives ``airflow standalone`` (the same entry point)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    cmd = [sys.executable, "-m", "scripts.airflow_settings", "--port", str(port)]
    result = subprocess.run(
        [*cmd, "python", "-c", PRINT_ENV],
        cwd=PROJECT_ROOT,
        env={**env, "AIRFLOW_HOME": str(home), **(extra or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def shared(env: dict[str, str], port: int) -> dict[str, str]:
    keys = set(as_env(project_settings(api_port=port, passwords_file=Path()))) - PER_INSTALLATION
    return {k: env.get(k) for k in sorted(keys)}


def test_make_airflow_loads_the_plugins_and_shows_korean_time(tmp_path: Path) -> None:
    env = make_airflow_env(tmp_path, 8080)
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(PLUGINS_FOLDER)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS_FOLDER)
    assert env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "Asia/Seoul"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__PORT"] == "8080"
    assert env["AIRFLOW_HOME"] == str(tmp_path)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(f"sqlite:///{tmp_path}/")
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


def test_a_time_zone_from_the_environment_is_kept(tmp_path: Path) -> None:
    env = make_airflow_env(tmp_path, 8080, {"AIRFLOW__CORE__DEFAULT_TIMEZONE": "UTC"})
    assert env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "UTC"


def test_make_airflow_and_the_launcher_have_the_same_airflow(tmp_path: Path) -> None:
    port = 18123
    launcher = AirflowServer(home=tmp_path, model_repo=tmp_path / "repo", port=port).env()
    standalone = make_airflow_env(tmp_path, port)
    assert shared(standalone, port) == shared(launcher, port)
    for key in ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        assert standalone[key] == launcher[key], key


def test_the_cluster_shares_every_setting_but_its_executor_and_db(tmp_path: Path) -> None:
    from scripts.cluster.cluster import Cluster

    data = tmp_path / "data"
    folder_with_an_exited_process(data)
    cluster = Cluster(data=data)
    port = cluster.state.ports["api"]
    config = as_env(cluster.airflow.config())
    launcher = AirflowServer(home=tmp_path, model_repo=tmp_path / "repo", port=port).env()
    assert shared(config, port) == shared(launcher, port)
    assert config["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
