"""The Airflow UI, as a person sees it: headless Chromium logs in and looks at the DAG list.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``make browser`` installs
them; ``make test`` depends on it). The screenshot is left in
``output/screenshots/dag-list.png`` for people to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E, EXPECTED_DAGS

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 60


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
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_dag_list_shows_the_four_dags_and_no_import_errors(
    e2e: E2E, browser, screenshots_dir: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)
    server = e2e.server
    browser.get(f"{server.url}/dags")
    # Not logged in: the SimpleAuthManager login form.
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(server.password)
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button[type=submit]"))).click()
    wait.until(lambda d: "/auth/login" not in d.current_url)
    browser.get(f"{server.url}/dags")

    def all_dags_listed(driver) -> bool:
        text = driver.find_element(By.TAG_NAME, "body").text
        return all(dag_id in text for dag_id in EXPECTED_DAGS)

    try:
        wait.until(all_dags_listed)
    finally:  # the screenshot is most useful when the page is not what we expect
        shot = screenshots_dir / "dag-list.png"
        assert browser.save_screenshot(str(shot)), f"could not save {shot}"
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "Import Error" not in text, f"the DAG list shows import errors:\n{text[:2000]}"
    assert "Sign into Airflow" not in text
    for dag_id in EXPECTED_DAGS:
        assert browser.find_elements(By.XPATH, f"//a[normalize-space()='{dag_id}']"), dag_id
