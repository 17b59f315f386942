"""Tell a running Airflow that prod changed: ``make rollback``'s and ``make redeploy``'s last step.

    python -m scripts.prod_event

Posts an ``iris-model-prod`` asset event (``POST /api/v2/assets/events``, the extras a
promotion's event has: version, commit, model md5, metrics, when) to the Airflow API server
at ``AIRFLOW_API_URL`` (default ``http://127.0.0.1:8080``, ``make airflow``'s), logged in as
``admin`` with the password from the SimpleAuthManager password file
(``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE``, else ``$AIRFLOW_HOME``'s
``simple_auth_manager_passwords.json.generated``). The event triggers ``batch_inference``
at once. With no server answering, or no login, it says in one line that no event was
sent (the next 5-minute run serves the new version all the same) and exits 0: the
rollback or redeploy itself has succeeded. The password is never printed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import requests

from batchserving import PROJECT_ROOT
from batchserving.core.excerpt import clip
from batchserving.core.names import SERVING_DIR
from batchserving.core.urls import UnsafeUrl, checked_url
from batchserving.registry.workspace import workspace_path
from batchserving.serving.deployment import read_record
from scripts.airflow_api import ADMIN, AirflowRestClient

DEFAULT_API_URL = "http://127.0.0.1:8080"
GENERATED_PASSWORDS = "simple_auth_manager_passwords.json.generated"
# A password file holds a few logins; far larger is not one.
MAX_PASSWORDS_BYTES = 64 * 1024
NOT_SENT = "prod_event: no iris-model-prod asset event sent"
LATER = "batch_inference serves the new prod version at its next 5-minute run"


def passwords_file(environ=os.environ) -> Path:
    """The SimpleAuthManager password file the API server reads."""
    named = environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    if named:
        return Path(named)
    home = Path(environ.get("AIRFLOW_HOME") or PROJECT_ROOT / ".airflow")
    return home / GENERATED_PASSWORDS


def admin_password(path: Path) -> str | None:
    """``admin``'s password from the file at ``path``, or None (missing, too big, no entry)."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_PASSWORDS_BYTES + 1)
        known = json.loads(raw) if len(raw) <= MAX_PASSWORDS_BYTES else None
    except (OSError, ValueError):
        return None
    password = known.get(ADMIN) if isinstance(known, dict) else None
    return password if isinstance(password, str) and password else None


def send(url: str, password_path: Path, asset: str, extra: dict) -> str:
    """Post an event of ``asset``; return the line to print (what was sent, or why not)."""
    password = admin_password(password_path)
    client = AirflowRestClient(url, password or "")
    if not client.health():
        return (
            f"{NOT_SENT}: no Airflow API server answers at {url} (make airflow starts one); {LATER}"
        )
    if password is None:
        return f"{NOT_SENT}: no {ADMIN} password in {password_path}; {LATER}"
    try:
        event = client.post_asset_event(asset, extra)
    except (AssertionError, requests.RequestException, KeyError, TypeError, ValueError) as exc:
        # The REST client's errors quote a status and the reply, never the password.
        return f"{NOT_SENT}: {clip(' '.join(str(exc).split()), 200)}; {LATER}"
    return (
        f"prod_event: {asset} event {event.get('id')} sent to {url} "
        f"({extra.get('version')}): batch_inference runs now"
    )


def main() -> None:
    from dags.batchserving_dags.assets import PROD_DEPLOYMENT, prod_extras

    try:
        url = checked_url(os.environ.get("AIRFLOW_API_URL"), "AIRFLOW_API_URL", "the password file")
    except UnsafeUrl as exc:
        sys.exit(f"prod_event: {exc}")
    url = (url or DEFAULT_API_URL).rstrip("/")
    try:
        record = read_record(workspace_path() / SERVING_DIR)
    except (OSError, ValueError) as exc:
        sys.exit(f"prod_event: no deployment to announce ({type(exc).__name__}); run make redeploy")
    print(send(url, passwords_file(), PROD_DEPLOYMENT.name, prod_extras(record)))


if __name__ == "__main__":
    main()
