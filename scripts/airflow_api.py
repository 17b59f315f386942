"""The REST API v2 client of a local Airflow (``make demo``, ``make cluster``, the tests).

``AirflowRestClient``: token auth (``POST /auth/token``, SimpleAuthManager) and the REST
calls the harnesses make (pools, connections, DAGs, runs, task instances, asset events,
answers to human-in-the-loop tasks). Every request
has a deadline (``REQUEST_SECONDS``). Airflow answers a trigger whose logical date a run
of the DAG already has (a scheduled one, say) with an opaque 409 ("Serious error ...
Check logs"); ``trigger()`` picks the trigger's time, a free date, and names the run in
the way when a date it was given is taken (``RunConflict``). Starting and stopping the
processes behind it is ``scripts.processes``'s job.
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
REQUEST_SECONDS = 30  # (connect, read) each: a hung API server fails the call, named


class RunConflict(AssertionError):
    """A run with that run id or logical date exists already; the message says which."""


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
                timeout=REQUEST_SECONDS,
            )
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2{path}``; raise with the body on an error status, naming the server
        if it does not answer within REQUEST_SECONDS."""
        try:
            resp = requests.request(
                method,
                f"{self.url}/api/v2{path}",
                headers={"Authorization": f"Bearer {self.token()}"},
                timeout=REQUEST_SECONDS,
                **kwargs,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise AssertionError(
                f"{method} {path}: the Airflow API server at {self.url} did not answer within "
                f"{REQUEST_SECONDS} s ({type(exc).__name__}): is it running? "
                "(`python -m scripts.cluster status` for the cluster)"
            ) from None
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

    def trigger(
        self, dag_id: str, run_id: str, logical_date: datetime | None = None, attempts: int = 5
    ) -> str:
        """Create a run for ``logical_date`` (by default now: a date no run has, taken again
        if a run got it first). SQLite has one writer: a trigger beside a busy scheduler can
        meet "database is locked" (HTTP 500), so a 500 is retried a few times; a retry that
        finds the run already created counts as created. A run id or a given logical date
        that a run has already raises ``RunConflict`` naming that run."""
        for attempt in range(1, attempts + 1):
            when = logical_date or datetime.now(UTC)
            body = {"dag_run_id": run_id, "logical_date": when.isoformat()}
            try:
                return self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]
            except AssertionError as exc:
                if ": 409 " in str(exc):
                    if attempt > 1 and self._run(dag_id, run_id):
                        return run_id  # our earlier attempt created it
                    conflict = self._conflict(dag_id, run_id, when)
                    if conflict or logical_date or attempt == attempts:
                        raise RunConflict(conflict or f"{dag_id}: {str(exc)[:300]}") from None
                    continue  # a run took the moment we picked: pick the next one
                if ": 500 " not in str(exc) or attempt == attempts:
                    raise
                time.sleep(2 * attempt)
        raise AssertionError("unreachable")

    def _run(self, dag_id: str, run_id: str) -> dict | None:
        try:
            return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        except AssertionError:
            return None

    def _conflict(self, dag_id: str, run_id: str, when: datetime) -> str | None:
        """What a 409 of a trigger meant: the run that has the run id or the logical date."""
        if existing := self._run(dag_id, run_id):
            return (
                f"{dag_id} has a run {run_id!r} already (logical date "
                f"{existing.get('logical_date')}): trigger with another run id"
            )
        day = {"logical_date_gte": when.isoformat(), "logical_date_lte": when.isoformat()}
        same = self.api("GET", f"/dags/{dag_id}/dagRuns", params={**day, "limit": 1})
        if same["dag_runs"]:
            other = same["dag_runs"][0]
            return (
                f"{dag_id} has a run for logical date {when.isoformat()} already "
                f"({other['dag_run_id']!r}, {other.get('run_type')}, {other.get('state')}): a "
                "DAG has one run per logical date; trigger with another logical date, or none "
                "(the time of the trigger)"
            )
        return None

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

    def post_asset_event(self, name: str, extra: dict[str, Any]) -> dict:
        """Record an event of asset ``name``, as a producing task would; return the event."""
        found = self.api("GET", "/assets", params={"name_pattern": name, "limit": 100})["assets"]
        ids = [asset["id"] for asset in found if asset["name"] == name]
        if not ids:
            raise AssertionError(f"Airflow knows no asset {name!r}: no DAG names it yet")
        return self.api("POST", "/assets/events", json={"asset_id": ids[0], "extra": extra})

    def answer(self, dag_id: str, run_id: str, task_id: str, option: str) -> dict:
        """Answer a human-in-the-loop task waiting for input (e.g. ``Approve``)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
        return self.api("PATCH", path, json={"chosen_options": [option]})

    def waiting_question(self, dag_id: str, run_id: str, task_id: str) -> dict:
        """The question a human-in-the-loop task asks (subject, body, options, defaults)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
        return self.api("GET", path)
