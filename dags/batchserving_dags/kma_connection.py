"""Hand the KMA key from connection ``kma_api`` to a bash command, outside every template.

A templated ``env={"KMA_SERVICE_KEY": "{{ conn.kma_api.password }}"}`` would be stored in
the metadata DB as a rendered field and shown in the UI. ``KmaBashOperator`` (declared in
the package) instead calls ``kma_env`` when the task executes, in the task process: it
reads the connection through the Task SDK, which also registers the password with the
log masker, and the operator adds ``KMA_SERVICE_KEY`` / ``KMA_BASE_URL`` only to the
environment of the command it starts. Nothing it adds is a template field or is logged.
Imported only when such a task runs.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

KMA_CONN_ID = "kma_api"
ADD_CONNECTION = (
    "airflow connections add kma_api --conn-type http "
    "--conn-host https://apis.data.go.kr/1360000/VilageFcstInfoService_2.0 "
    "--conn-password '<service key from data.go.kr>'"
)


def base_url(host: str | None, schema: str | None, port: int | None) -> str | None:
    """The base URL from the connection's host (a full URL, or a host name with schema/port)."""
    if not host:
        return None
    if "://" in host:
        return host
    scheme = schema if schema in ("http", "https") else "https"
    return f"{scheme}://{host}{f':{port}' if port else ''}"


def kma_env(log: Any) -> dict[str, str]:
    """``KMA_SERVICE_KEY`` (and ``KMA_BASE_URL``) from ``kma_api``; fail the task without it.

    ``log`` is the task's logger: it gets the base URL, never the key.
    """
    try:
        conn = BaseHook.get_connection(KMA_CONN_ID)
    except AirflowNotFoundException:
        raise AirflowFailException(
            f"connection {KMA_CONN_ID!r} is not configured: add it with `{ADD_CONNECTION}` "
            "(host = base URL, password = the service key)"
        ) from None
    if not conn.password:
        raise AirflowFailException(
            f"connection {KMA_CONN_ID!r} has no password: put the KMA service key there"
        )
    env = {"KMA_SERVICE_KEY": conn.password}
    url = base_url(conn.host, conn.schema, conn.port)
    if url:
        env["KMA_BASE_URL"] = url
    from batchserving.core.urls import redact_url

    log.info(
        "KMA key and base URL %s taken from connection %r (the key is not logged)",
        redact_url(url) if url else "(params.yaml weather.base_url)",
        KMA_CONN_ID,
    )
    return env
