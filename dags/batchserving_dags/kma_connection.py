"""Hand the KMA key from connection ``kma_api`` to a bash command, outside every template.

A templated ``env={"KMA_SERVICE_KEY": "{{ conn.kma_api.password }}"}`` would be stored in
the metadata DB as a rendered field and shown in the UI. ``KmaBashOperator`` instead
reads the connection when the task executes, in the task process (through the Task SDK,
which also registers the password with the log masker), and adds ``KMA_SERVICE_KEY`` /
``KMA_BASE_URL`` only to the environment of the command it starts. Nothing it adds is a
template field or is logged.
"""

from __future__ import annotations

from batchserving_dags.model_repo import ProjectBashOperator

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


class KmaBashOperator(ProjectBashOperator):
    """A project task whose command gets the KMA key and base URL from ``kma_api``."""

    def get_env(self, context) -> dict:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

        env = super().get_env(context)
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
        env["KMA_SERVICE_KEY"] = conn.password
        url = base_url(conn.host, conn.schema, conn.port)
        if url:
            env["KMA_BASE_URL"] = url
        self.log.info(
            "KMA key and base URL %s taken from connection %r (the key is not logged)",
            url or "(params.yaml weather.base_url)",
            KMA_CONN_ID,
        )
        return env
