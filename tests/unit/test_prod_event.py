"""``scripts.prod_event`` (make rollback / make redeploy's last step) when it cannot send.

Sending to a real API server is tests/e2e/test_promotion_approval.py; here no server
answers, the login is missing, or the URL is unsafe: one plain line, never a traceback,
never the secret, and the rollback's exit status untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from batchserving import PROJECT_ROOT
from scripts.processes import free_port


@pytest.fixture
def deployed(tmp_path: Path) -> Path:
    """A workspace whose output/serving names a deployed version (the record alone)."""
    serving = tmp_path / "repo/output/serving"
    serving.mkdir(parents=True)
    record = {"version": "v0.0.1", "commit": "a" * 40, "model_md5": "b" * 32, "metrics": {}}
    (serving / "model.json").write_text(json.dumps(record))
    return tmp_path / "repo"


def prod_event(repo: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.prod_event"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "MODEL_REPO": str(repo), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_server_says_no_event_was_sent_and_succeeds(deployed: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = prod_event(deployed, AIRFLOW_API_URL=url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"prod_event: no iris-model-prod asset event sent: no Airflow API server answers at "
        f"{url} (make airflow starts one); batch_inference serves the new prod version at "
        "its next 5-minute run"
    )


def test_a_url_with_credentials_is_refused_without_echoing_them(deployed: Path) -> None:
    done = prod_event(deployed, AIRFLOW_API_URL="http://admin:s3cret-pw@127.0.0.1:8080")
    assert done.returncode == 1
    assert "AIRFLOW_API_URL" in done.stderr and "carries credentials" in done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_nothing_deployed_is_one_line(tmp_path: Path) -> None:
    done = prod_event(tmp_path / "empty", AIRFLOW_API_URL="http://127.0.0.1:9")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "prod_event: no deployment to announce (FileNotFoundError); run make redeploy"
    ]
