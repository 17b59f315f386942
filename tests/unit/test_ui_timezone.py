"""The UI time zone plugin: the UI page gains one script line; nothing else changes."""

from __future__ import annotations

import asyncio
import importlib.util
import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route

from batchserving import PLUGINS_FOLDER

PLUGIN = PLUGINS_FOLDER / "ui_timezone.py"
PAGE = '<!doctype html><html><head><meta charset="UTF-8" /></head><body></body></html>'


@pytest.fixture(scope="module")
def plugin():
    """The plugin module, loaded from its file as Airflow's plugins folder loads it."""
    spec = importlib.util.spec_from_file_location("ui_timezone", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Client:
    """Requests straight into the ASGI app, as the API server's middleware stack sees them."""

    def __init__(self, app) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def request(self, method: str, path: str) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://ui") as http:
                return await http.request(method, path)

        return asyncio.run(send())

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str) -> httpx.Response:
        return self.request("POST", path)


def client(plugin, monkeypatch, zone: str) -> Client:
    monkeypatch.setenv("AIRFLOW__CORE__DEFAULT_TIMEZONE", zone)
    app = Starlette(
        routes=[
            Route("/dags", lambda request: HTMLResponse(PAGE)),
            Route("/api/v2/version", lambda request: JSONResponse({"html": "<head>"})),
            Route("/static/notes.txt", lambda request: PlainTextResponse("<head>")),
            Route("/missing", lambda request: HTMLResponse(PAGE, status_code=404)),
        ]
    )
    app.add_middleware(plugin.DefaultTimezoneMiddleware)
    return Client(app)


def test_the_ui_page_stores_the_server_zone_unless_the_browser_has_one(plugin, monkeypatch) -> None:
    reply = client(plugin, monkeypatch, "Asia/Seoul").get("/dags")
    assert reply.status_code == 200
    head = reply.text.split("</head>")[0]
    expected = (
        '<head><script>try{if(!localStorage.getItem("timezone"))'
        'localStorage.setItem("timezone","\\"Asia/Seoul\\"")}catch(e){}</script>'
    )
    assert head.startswith("<!doctype html><html>" + expected), head
    assert int(reply.headers["content-length"]) == len(reply.content)
    # What the UI reads back with JSON.parse is the zone itself.
    stored = head.split('setItem("timezone",')[1].split(")}")[0]
    assert json.loads(json.loads(stored)) == "Asia/Seoul"


def test_only_the_ui_page_changes(plugin, monkeypatch) -> None:
    http = client(plugin, monkeypatch, "Asia/Seoul")
    assert http.get("/api/v2/version").json() == {"html": "<head>"}
    assert http.get("/static/notes.txt").text == "<head>"
    assert http.get("/missing").text == PAGE
    assert http.post("/dags").status_code == 405


@pytest.mark.parametrize(("setting", "zone"), [("UTC", "UTC"), ("utc", "UTC"), ("system", "UTC")])
def test_airflow_spellings_of_utc(plugin, monkeypatch, setting: str, zone: str) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__DEFAULT_TIMEZONE", setting)
    assert plugin.ui_timezone() == zone


def test_an_unknown_zone_is_a_clear_error(plugin, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__DEFAULT_TIMEZONE", "Asia/Nowhere")
    with pytest.raises(ValueError, match=r"'Asia/Nowhere' is not a time zone name.*IANA"):
        plugin.ui_timezone()


def test_no_value_can_close_the_script_element(plugin) -> None:
    script = plugin.default_zone_script("</script><script>alert(1)")
    assert script.count(b"</script>") == 1 and script.endswith(b"</script>")
