"""Airflow plugin: the UI shows times in ``[core] default_timezone`` (Asia/Seoul here) by default.

Airflow 3's UI takes its time zone from the browser (``Intl``) unless the user picked one in
its time zone menu, which it keeps in the browser's storage under ``timezone``; the server
has no setting for it. This plugin adds a root middleware to the API server that puts one
line of script in the UI's HTML page: when the browser has no choice stored yet, it stores
the server's ``[core] default_timezone``. A user's own choice in the menu is never
overwritten, and nothing but the HTML page of the UI is touched (the REST API, static
files and logs pass through as they are). Schedules are unaffected: each DAG names its
time zone.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

STORAGE_KEY = "timezone"  # the UI's own key for the zone picked in its menu
HEAD = b"<head>"


def ui_timezone() -> str:
    """The zone the UI starts in: ``[core] default_timezone``, checked against the tz database."""
    name = conf.get("core", "default_timezone", fallback="utc")
    if name.lower() in ("utc", "system"):  # Airflow's spellings; "system" is UTC for it too
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"[core] default_timezone = {name!r} is not a time zone name the UI knows; "
            "use an IANA name such as Asia/Seoul or UTC (AIRFLOW__CORE__DEFAULT_TIMEZONE)"
        ) from exc
    return name


def default_zone_script(zone: str) -> bytes:
    """The line of script that stores ``zone`` unless the browser already has a choice."""
    key, value = json.dumps(STORAGE_KEY), json.dumps(json.dumps(zone))
    script = (
        f"try{{if(!localStorage.getItem({key}))localStorage.setItem({key},{value})}}catch(e){{}}"
    )
    # json.dumps leaves "<" as is: escape it so no value can close the script element.
    return b"<script>" + script.replace("<", r"\u003c").encode() + b"</script>"


class DefaultTimezoneMiddleware:
    """ASGI middleware: add the default-zone script to the UI's HTML page, nothing else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.script = default_zone_script(ui_timezone())

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"].startswith("/api"):
            await self.app(scope, receive, send)
            return
        start: Message = {}
        body = bytearray()

        async def send_with_script(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if _is_html(message):
                    start = message  # held back until the body is complete
                    return
                await send(message)
            elif start:
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send_page(start, bytes(body), send)
            else:
                await send(message)

        await self.app(scope, receive, send_with_script)

    async def _send_page(self, start: Message, body: bytes, send: Send) -> None:
        if HEAD in body:
            body = body.replace(HEAD, HEAD + self.script, 1)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _is_html(start: Message) -> bool:
    headers = dict((k.lower(), v) for k, v in start.get("headers", []))
    return start.get("status") == 200 and headers.get(b"content-type", b"").startswith(b"text/html")


class UiTimezonePlugin(AirflowPlugin):
    """Registers the middleware with the API server."""

    name = "ui_timezone"
    fastapi_root_middlewares = [  # noqa: RUF012 - the attribute Airflow reads
        {"middleware": DefaultTimezoneMiddleware, "name": "Default UI time zone"}
    ]
