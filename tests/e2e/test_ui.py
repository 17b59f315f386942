"""The Airflow UI, as a person sees it after a demo-like run: headless Chromium, logged in.

The UI is the README's: ``make airflow`` itself (``airflow standalone`` with the project's
settings), on a fresh Airflow home and a free port. The five DAGs run in order through
the REST API as ``make demo`` runs them; then the browser looks at the DAG list,
model_selection's graph for that run (the branch taken), a task's log page (its own
output line) and the asset graph. Needs the Debian packages
``chromium`` and ``chromium-driver`` (``make browser`` installs them; ``make test``
depends on it). The screenshots are left in ``output/screenshots/`` for people to look
at. The browser runs in UTC and the UI still shows Korean time (the server's default zone),
until the user picks another zone.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from batchserving import PROJECT_ROOT
from batchserving.core.results import read_result
from batchserving.weather.fake_kma import FakeKma
from scripts.airflow_api import ADMIN, AirflowRestClient
from scripts.airflow_server import HEARTBEATING_JOBS
from scripts.airflow_settings import PASSWORDS_FILE
from scripts.demo import DAG_IDS, trigger_and_wait
from scripts.processes import free_port, start_process, stop_processes, tail_file, wait_until
from tests.conftest import snapshot_project
from tests.e2e.conftest import EXPECTED_DAGS
from tests.fakes.slack import SlackReceiver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 60
# A browser far from Seoul: the UI must still start in Korean time (plugins/ui_timezone.py).
BROWSER_TIMEZONE = "UTC"
START_TIMEOUT = 300  # make setup on a fresh home (db migrate, the pool), then standalone
# Every process `make airflow` starts carries it (a value of its own): stop() finds strays.
MARKER = "BATCHSERVING_MAKE_AIRFLOW"


@dataclass
class MakeAirflow:
    """``make airflow`` running: where it answers, the admin password, a REST client."""

    url: str
    password: str
    rest: AirflowRestClient


def make_airflow_env(home: Path, repo: Path, marker: str) -> dict[str, str]:
    """This environment without any Airflow or make setting, on a fresh home and repo."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "MODEL_REPO", "MAKE", "MFLAGS"))
        and k != "PYTEST_CURRENT_TEST"
    }
    return {
        **env,
        "AIRFLOW_HOME": str(home),
        "MODEL_REPO": str(repo),
        # Only the triggered runs below, as in make demo: no scheduled run starts meanwhile.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        MARKER: marker,
    }


def admin_password(path: Path) -> str | None:
    """The password `airflow standalone` generated for the admin (None: not yet)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get(ADMIN)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@pytest.fixture(scope="module")
def make_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeAirflow]:
    """``make airflow PORT=<free>`` on a fresh home, with my_webhook and kma_api set; stopped
    by pid (its process group, then any stray with its marker), even after a failure."""
    root = tmp_path_factory.mktemp("make-airflow")
    home, port, marker = root / "airflow-home", free_port(), secrets.token_hex(8)
    env = make_airflow_env(home, snapshot_project(root / "model-repo"), marker)
    log = root / "make-airflow.out"
    with ExitStack() as stack:
        slack = stack.enter_context(SlackReceiver())
        kma_key = f"ui+KmA/{secrets.token_hex(12)}/kEy=="
        kma = stack.enter_context(FakeKma(key=kma_key))
        cmd = ["make", "--no-print-directory", "-C", str(PROJECT_ROOT), "airflow", f"PORT={port}"]
        proc = start_process(cmd, env, log)
        stack.callback(
            stop_processes, {proc.pid: None}, marker=(MARKER, marker), reap=lambda _: proc.poll()
        )

        def check_running() -> None:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"make airflow exited with {proc.returncode}:\n{tail_file(log, 40)}"
                )

        def diagnostics() -> str:
            return tail_file(log, 60)

        password = wait_until(
            lambda: check_running() or admin_password(home / PASSWORDS_FILE),
            START_TIMEOUT,
            "make airflow to write the admin password",
            details=diagnostics,
        )
        rest = AirflowRestClient(f"http://127.0.0.1:{port}", password, diagnostics, check_running)
        rest.wait(
            lambda: all(
                rest.health().get(job, {}).get("status") == "healthy" for job in HEARTBEATING_JOBS
            ),
            START_TIMEOUT,
            "make airflow's scheduler and triggerer",
        )
        rest.wait_for_dags(EXPECTED_DAGS)
        rest.add_connection("my_webhook", "slackwebhook", password=slack.url)
        rest.add_connection("kma_api", "http", host=kma.base_url, password=kma_key)
        yield MakeAirflow(rest.url, password, rest)


@pytest.fixture(scope="module")
def demo_runs(make_airflow: MakeAirflow) -> dict[str, dict]:
    """The five DAGs run once each, in order, as ``make demo`` runs them: dag_id -> run."""
    runs = {}
    for dag_id in DAG_IDS:
        run, states = trigger_and_wait(make_airflow, dag_id)
        assert run["state"] == "success", (dag_id, states)
        runs[dag_id] = {**run, "states": states}
    return runs


@pytest.fixture
def browser(tmp_path: Path) -> Iterator:
    """Headless Chromium through chromedriver, with a fresh profile; always quit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    assert not missing, f"{missing} missing: run `make browser` (Debian chromium, chromium-driver)"
    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager: no telemetry
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    service = Service(str(CHROMEDRIVER), env={**os.environ, "TZ": BROWSER_TIMEZONE})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def login(browser, server) -> None:
    """Through the SimpleAuthManager login form, as a person does."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # The UI redirects to its login page by script: a look-up that meets that navigation
    # in progress is aborted ("aborted by navigation"); the wait looks again once it settles.
    wait = WebDriverWait(browser, WAIT_SECONDS, ignored_exceptions=(WebDriverException,))
    browser.get(f"{server.url}/dags")
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(server.password)
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button[type=submit]"))).click()
    wait.until(lambda d: "/auth/login" not in d.current_url)


def page_text(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.TAG_NAME, "body").text


def shoot(browser, screenshots_dir: Path, url: str | None, name: str, shows) -> str:
    """Open ``url`` (None: stay), wait until ``shows(page text)``, save ``name``.png (always)."""
    from selenium.webdriver.support.ui import WebDriverWait

    if url is not None:
        browser.get(url)
    try:
        WebDriverWait(browser, WAIT_SECONDS).until(lambda d: shows(page_text(d)))
    finally:  # the screenshot is most useful when the page is not what we expect
        shot = screenshots_dir / f"{name}.png"
        assert browser.save_screenshot(str(shot)), f"could not save {shot}"
    return page_text(browser)


def test_dag_list_shows_the_five_dags_and_no_import_errors(
    make_airflow: MakeAirflow, demo_runs, browser, screenshots_dir: Path
) -> None:
    from selenium.webdriver.common.by import By

    server = make_airflow
    login(browser, server)
    text = shoot(
        browser,
        screenshots_dir,
        f"{server.url}/dags",
        "dag-list",
        lambda text: all(dag_id in text for dag_id in EXPECTED_DAGS),
    )
    assert "Import Error" not in text, f"the DAG list shows import errors:\n{text[:2000]}"
    assert "Sign into Airflow" not in text
    assert "+09:00" in text, "the UI does not show Korean time"  # the sidebar's time zone
    for dag_id in EXPECTED_DAGS:
        assert browser.find_elements(By.XPATH, f"//a[normalize-space()='{dag_id}']"), dag_id


def test_a_time_zone_the_user_picks_is_kept(
    make_airflow: MakeAirflow, browser, screenshots_dir: Path
) -> None:
    """The server's default only fills an empty choice: a zone picked in the UI stays."""
    server = make_airflow
    login(browser, server)
    shoot(browser, screenshots_dir, f"{server.url}/dags", "zone-default", lambda t: "+09:00" in t)
    # What the UI's time zone menu stores (India: no daylight saving, so always +05:30).
    browser.execute_script("localStorage.setItem('timezone', JSON.stringify('Asia/Kolkata'))")
    text = shoot(
        browser, screenshots_dir, f"{server.url}/dags", "zone-picked", lambda t: "+05:30" in t
    )
    assert "+09:00" not in text
    assert browser.execute_script("return localStorage.getItem('timezone')") == '"Asia/Kolkata"'


def test_model_selection_graph_shows_the_branch_taken(
    make_airflow: MakeAirflow, demo_runs, browser, screenshots_dir: Path
) -> None:
    server = make_airflow
    run = demo_runs["model_selection"]
    taken = "promote" if run["states"]["promote"] == "success" else "keep_champion"
    skipped = "keep_champion" if taken == "promote" else "promote"
    assert run["states"][skipped] == "skipped"
    login(browser, server)
    # The DAG page's view (grid or graph) is a per-browser setting in local storage.
    browser.execute_script("localStorage.setItem('default_dag_view', JSON.stringify('graph'))")
    labels = ("challenger wins: promote", "champion stays: keep")
    text = shoot(
        browser,
        screenshots_dir,
        f"{server.url}/dags/model_selection/runs/{run['dag_run_id']}",
        "model-selection-graph",
        lambda text: all(label in text for label in labels),
    )
    for task_id in ("compare", "choose_branch", "promote", "keep_champion", "join"):
        assert task_id in text, task_id
    assert run["dag_run_id"] in text


def test_task_log_page_shows_the_tasks_own_output(
    make_airflow: MakeAirflow, demo_runs, browser, screenshots_dir: Path
) -> None:
    server = make_airflow
    run_id = demo_runs["batch_inference"]["dag_run_id"]
    path = f"/dags/batch_inference/dagRuns/{run_id}/taskInstances/predict/xcomEntries/return_value"
    result = read_result(server.rest.api("GET", path)["value"], "predict")
    assert result["rows"] == 5 and result["path"].endswith(".csv"), result
    output_line = f"predict: wrote {result['rows']} rows to {result['path']}"
    login(browser, server)
    shoot(
        browser,
        screenshots_dir,
        f"{server.url}/dags/batch_inference/runs/{run_id}/tasks/predict",
        "task-log",
        lambda text: output_line in text,
    )


def test_asset_graph_shows_the_flow_between_the_dags(
    make_airflow: MakeAirflow, demo_runs, browser, screenshots_dir: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    server = make_airflow
    assets = server.rest.api("GET", "/assets", params={"name_pattern": "iris-model-prod"})["assets"]
    (prod,) = [a for a in assets if a["name"] == "iris-model-prod"]
    login(browser, server)
    browser.get(f"{server.url}/assets/{prod['id']}")
    # "Task Dependencies": the producing and consuming tasks (inlets and outlets), not only
    # the DAGs an asset schedules.
    button = (By.XPATH, "//button[normalize-space()='Task Dependencies']")
    WebDriverWait(browser, WAIT_SECONDS).until(ec.element_to_be_clickable(button)).click()
    fit_view = (By.CSS_SELECTOR, ".react-flow__controls-fitview")  # the whole graph in view
    WebDriverWait(browser, WAIT_SECONDS).until(ec.element_to_be_clickable(fit_view)).click()
    text = shoot(
        browser,
        screenshots_dir,
        None,
        "asset-graph",
        lambda text: all(n in text for n in ("model_selection", "batch_inference", "predict")),
    )
    assert "iris-model-prod" in text and "promote" in text
