"""The REST API v2 client of a local Airflow (``make demo``, ``make cluster``, the tests).

``AirflowRestClient``: token auth (``POST /auth/token``, SimpleAuthManager) and the REST
calls the harnesses make (pools, connections, DAGs, runs, task instances). Starting and
stopping the processes behind it is ``scripts.processes``'s job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from scripts.processes import wait_until

ADMIN = "admin"
FINISHED = {"success", "failed"}


def _nothing_to_check() -> None:
    """No component to watch: a wait ends on its timeout alone."""


@dataclass
class AirflowRestClient:
    """REST API v2 calls to the API server at ``url`` with a SimpleAuthManager token.

    ``diagnostics`` says what to show when a wait times out (the components' output);
    ``check_running`` raises if a component the owner started has exited."""

    url: str
    password: str
    diagnostics: Callable[[], str] = str
    check_running: Callable[[], None] = _nothing_to_check
    _token: str | None = field(default=None, repr=False)

    def wait(self, ready: Callable[[], Any], timeout: float, what: str, poll=0.5) -> Any:
        """Poll ``ready()``; fail at once, with its output, if a component has exited."""

        def ready_while_running() -> Any:
            self.check_running()
            return ready()

        return wait_until(ready_while_running, timeout, what, poll, self.diagnostics)

    def token(self) -> str:
        if self._token is None:
            resp = requests.post(
                f"{self.url}/auth/token",
                json={"username": ADMIN, "password": self.password},
                timeout=30,
            )
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2{path}``; raise with the body on an error status."""
        resp = requests.request(
            method,
            f"{self.url}/api/v2{path}",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
            **kwargs,
        )
        if resp.status_code >= 400:
            raise AssertionError(f"{method} {path}: {resp.status_code} {resp.text[:1000]}")
        return resp.json() if resp.content else None

    def health(self) -> dict:
        """``/api/v2/monitor/health`` ({} while the API server does not answer)."""
        try:
            return requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).json()
        except (requests.ConnectionError, requests.Timeout, ValueError):
            return {}

    def add_pool(self, name: str, slots: int, description: str) -> None:
        self.api("POST", "/pools", json={"name": name, "slots": slots, "description": description})

    def add_connection(self, conn_id: str, conn_type: str, **fields: Any) -> None:
        body = {"connection_id": conn_id, "conn_type": conn_type, **fields}
        self.api("POST", "/connections", json=body)

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.api("GET", "/dags", params={"limit": 100})["dags"]}

    def import_errors(self) -> list[dict]:
        return self.api("GET", "/importErrors", params={"limit": 100})["import_errors"]

    def wait_for_dags(self, expected: set[str], timeout: float = 120) -> set[str]:
        """Wait until the DAG processor has serialized every DAG in ``expected`` (or errors)."""
        self.wait(lambda: expected <= self.dag_ids() or self.import_errors(), timeout, "DAGs")
        return self.dag_ids()

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    def trigger(self, dag_id: str, run_id: str, attempts: int = 5, logical_date: str = "") -> str:
        """Create a run. SQLite has one writer: a trigger beside a busy scheduler can meet
        "database is locked" (HTTP 500), so a 500 is retried a few times; a retry that finds
        the run already created (409) counts as created."""
        now = datetime.now(UTC).isoformat()
        body = {"dag_run_id": run_id, "logical_date": logical_date or now}  # ISO
        for attempt in range(1, attempts + 1):
            try:
                return self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]
            except AssertionError as exc:
                if attempt > 1 and ": 409 " in str(exc):
                    return run_id
                if ": 500 " not in str(exc) or attempt == attempts:
                    raise
                time.sleep(2 * attempt)
        raise AssertionError("unreachable")

    def runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.api("GET", path)["task_instances"]

    def wait_for_runs(self, runs: dict[str, str], timeout: float) -> dict[str, dict]:
        """Wait until each ``{dag_id: run_id}`` is finished; return the runs by dag_id."""
        done: dict[str, dict] = {}

        def finished() -> bool:
            for dag_id, run_id in runs.items():
                if dag_id not in done:
                    run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
                    if run["state"] in FINISHED:
                        done[dag_id] = run
            return len(done) == len(runs)

        self.wait(finished, timeout, f"runs {runs}", poll=1.0)
        return done

    def wait_until_idle(self, dag_ids: set[str], timeout: float) -> list[dict]:
        """Wait until no run of ``dag_ids`` is queued or running; return all their runs."""

        def idle() -> bool:
            return all(r["state"] in FINISHED for d in dag_ids for r in self.runs(d))

        self.wait(idle, timeout, "all runs to finish", poll=1.0)
        return [r for d in dag_ids for r in self.runs(d)]
