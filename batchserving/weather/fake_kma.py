"""A local stand-in for the KMA ultra-short forecast service (``getUltraSrtFcst``).

It answers exactly as ``docs/kma-api.md`` describes: 60 items per
issuance in the documented JSON (values as strings, grid as integers, item order
shuffled), paging by ``pageNo``/``numOfRows``, and every documented fault on demand, in
each envelope form the portal really sends. Forecast values are simulated, deterministic
per issuance (same issuance => same body).

    python -m batchserving.weather.fake_kma --port 8765 [--mode ok]   # prints its base URL

In tests: ``with FakeKma() as kma: kma.fail("01", "01")`` makes the next two requests
answer code 01, then normal service resumes; ``kma.mode = "500"`` makes every request
fail. ``kma.requests`` records the query of every request (the fake counts them).

Fault names (``fail``, ``mode``, ``--mode``):
  ``ok``                       normal service
  ``<code>`` (``01``..``99``)  HTTP 200: the backend's JSON envelope for 01-05/10/11, the
                               gateway's classic XML for the others
  ``gateway:<code>:<status>``  classic gateway XML (no prolog) with that HTTP status
  ``gateway_new:<code>:<status>``  newer gateway XML: a prolog, the code's name in
                               ``errMsg`` (05 as ``SERVICETIMEOUT_ERROR``), Korean text in
                               ``returnAuthMsg`` (e.g. ``gateway_new:30:403``, ``:12:400``)
  ``gateway_json:<code>:<status>``  the gateway's JSON envelope, as sent when JSON was
                               asked for (e.g. ``gateway_json:22:429``, the daily quota)
  ``xml_backend:<code>``       the backend's XML envelope, HTTP 200
  ``no_key``                   HTTP 401, newer XML, ``SERVICE_KEY_IS_NULL`` with code 20
                               (also the answer to a request without ``serviceKey``)
  ``too_old``                  code 10 with ``최근 1일 간의 자료만 제공합니다.``, the answer to
                               a ``base_date`` older than the one day the service keeps
  ``401`` (plain-text Unauthorized) | ``429`` (plain-text, no envelope) | ``500`` | ``502``
  | ``timeout`` (answers after ``delay`` s) | ``reset`` (TCP reset) | ``garbage`` (neither
  JSON nor XML) | ``empty`` (00 with empty items) | ``single`` (one item, as an object)
  | ``short`` (totalCount 60, only 59 items exist).
Hostile answers (what a broken or malicious server could send; ``docs/kma-api.md``,
"Bounds"):
  ``huge``                     HTTP 200 and a JSON body of ``huge_bytes`` (300 MiB) with no
                               Content-Length, written until the client hangs up
  ``huge_declared``            the same, with a Content-Length that says so up front
  ``trickle``                  a real page, one byte every ``trickle_seconds`` (1 s)
  ``trickle_headers``          the same from the status line on: the headers trickle too
  ``total:<JSON number>``      every page holds the issuance's 60 items and claims this
                               ``totalCount``, spelled as given (``total:1e309``,
                               ``total:1000000000000000000``, ``total:NaN``)
  ``poison:<kind>``            one item broken as ``POISONS`` names (``no_value``,
                               ``bad_date``, ``bad_category``, ``other_cell``,
                               ``other_issuance``)
The registered key is ``key``; a key that arrives double-encoded (``%2B`` decoded once
is still ``%2B``) is refused with gateway code 30, as the real gateway does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections import deque
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from batchserving.weather.items import CATEGORIES

SERVICE_PATH = "/1360000/VilageFcstInfoService_2.0"
OPERATION_PATH = SERVICE_PATH + "/getUltraSrtFcst"
# A fake key in the old Decoding form: its Encoding form differs (%2B, %2F, %3D).
FAKE_KEY = "fAkE+KmA/tEsT+sErViCeKeY/0123456789+AbCdEfGhIjKlMnOpQrStUvWxYz=="
BACKEND_CODES = {"01", "02", "03", "04", "05", "10", "11"}
CODE_NAMES = {
    "01": "APPLICATION_ERROR",
    "02": "DB_ERROR",
    "03": "NO_DATA",
    "04": "HTTP_ERROR",
    "05": "SERVICETIME_OUT",
    "10": "INVALID_REQUEST_PARAMETER_ERROR",
    "11": "NO_MANDATORY_REQUEST_PARAMETERS_ERROR",
    "12": "NO_OPENAPI_SERVICE_ERROR",
    "20": "SERVICE_ACCESS_DENIED_ERROR",
    "21": "TEMPORARILY_DISABLE_THE_SERVICEKEY_ERROR",
    "22": "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
    "23": "LIMITED_NUMBER_OF_SERVICE_REQUESTS_PER_SECOND_EXCEEDS_ERROR",
    "30": "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
    "31": "DEADLINE_HAS_EXPIRED_ERROR",
    "32": "UNREGISTERED_IP_ERROR",
    "33": "UNSIGNED_CALL_ERROR",
    "99": "UNKNOWN_ERROR",
}
RN1_STRINGS = ("강수없음", "1mm 미만", "1.0mm 미만", "2.0mm", "3.5mm", "30.0~50.0mm", "50.0mm 이상")


def forecast_items(base_date: str, base_time: str, nx: int, ny: int) -> list[dict]:
    """The 60 items of one issuance: 6 forecast hours x 10 categories, simulated, shuffled."""
    base = datetime.strptime(base_date + base_time, "%Y%m%d%H%M")
    rng = random.Random(f"{base_date}{base_time}{nx}{ny}")
    items = []
    for hour in range(1, 7):
        at = base.replace(minute=0) + timedelta(hours=hour)
        # Seoul-like: about -2 C in January, 26 C in July, warmest mid-afternoon.
        seasonal = 12.5 - 14 * math.cos(2 * math.pi * (at.timetuple().tm_yday - 15) / 365)
        diurnal = -4 * math.cos(2 * math.pi * (at.hour - 3) / 24)
        temp = round(seasonal + diurnal + rng.uniform(-1.5, 1.5))
        raining = rng.random() < 0.25
        wind = round(rng.uniform(0.2, 6.0), 1)
        values = {
            "T1H": f"{temp:g}",
            "RN1": rng.choice(RN1_STRINGS[1:]) if raining else "강수없음",
            "SKY": str(rng.choice((3, 4)) if raining else rng.choice((1, 1, 3, 4))),
            "UUU": f"{round(rng.uniform(-wind, wind), 1) + 0.0:g}",
            "VVV": f"{round(rng.uniform(-wind, wind), 1) + 0.0:g}",
            "REH": str(rng.randint(70, 98) if raining else rng.randint(25, 80)),
            "PTY": str(rng.choice((1, 2, 3, 5, 6, 7)) if raining else 0),
            "LGT": "0",
            "VEC": str(rng.randint(0, 359)),
            "WSD": f"{wind:g}",
        }
        for category in CATEGORIES:
            items.append(
                {
                    "baseDate": base_date,
                    "baseTime": base_time,
                    "category": category,
                    "fcstDate": at.strftime("%Y%m%d"),
                    "fcstTime": at.strftime("%H%M"),
                    "fcstValue": values[category],
                    "nx": nx,
                    "ny": ny,
                }
            )
    rng.shuffle(items)  # the real service does not promise an order
    return items


def success_body(items: list[dict], page: int, rows: int, total: int | None = None) -> dict:
    """The documented JSON success envelope for one page of ``items``."""
    chunk = items[(page - 1) * rows : page * rows]
    return {
        "response": {
            "header": {"resultCode": "00", "resultMsg": "NORMAL_SERVICE"},
            "body": {
                "dataType": "JSON",
                "items": {"item": chunk} if chunk else "",
                "pageNo": page,
                "numOfRows": rows,
                "totalCount": len(items) if total is None else total,
            },
        }
    }


XML = "text/xml;charset=UTF-8"
JSON = "application/json;charset=UTF-8"
# (HTTP status, body, Content-Type) of one answer.
Reply = tuple[int, bytes, str]
# The Korean text the gateway's newer layouts carry in returnAuthMsg (simulated wording).
KOREAN_TEXTS = {
    "01": "어플리케이션 에러",
    "02": "데이터베이스 에러",
    "03": "데이터없음 에러",
    "04": "HTTP 에러",
    "05": "서비스 연결실패 에러",
    "10": "잘못된 요청 파라메터 에러",
    "11": "필수요청 파라메터가 없음",
    "12": "해당 오픈API서비스가 없거나 폐기됨",
    "20": "서비스 접근거부",
    "21": "일시적으로 사용할 수 없는 서비스 키",
    "22": "서비스 요청제한횟수 초과에러",
    "23": "최대동시요청수 초과에러",
    "30": "등록되지 않은 서비스키",
    "31": "기한만료된 서비스키",
    "32": "등록되지 않은 IP",
    "33": "서명되지 않은 호출",
    "99": "기타에러",
}
# Names the newer layouts spell differently in errMsg.
NEW_LAYOUT_NAMES = {"03": "NODATA_ERROR", "05": "SERVICETIMEOUT_ERROR"}
WINDOW_MESSAGE = "최근 1일 간의 자료만 제공합니다."  # code 10 for a base_date out of the window


def gateway_xml(code: str) -> bytes:
    """The gateway's classic XML error envelope (sent even when JSON was asked for)."""
    return (
        "<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>"
        f"<returnAuthMsg>{CODE_NAMES.get(code, 'UNKNOWN_ERROR')}</returnAuthMsg>"
        f"<returnReasonCode>{code}</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>"
    ).encode()


def gateway_xml_new(code: str, name: str | None = None) -> bytes:
    """The gateway's newer XML envelope: a prolog, the code's name in errMsg, Korean text."""
    name = name or NEW_LAYOUT_NAMES.get(code) or CODE_NAMES.get(code, "UNKNOWN_ERROR")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<OpenAPI_ServiceResponse>\n  <cmmMsgHeader>\n'
        f"    <errMsg>{name}</errMsg>\n"
        f"    <returnAuthMsg>{KOREAN_TEXTS.get(code, '기타에러')}</returnAuthMsg>\n"
        f"    <returnReasonCode>{code}</returnReasonCode>\n"
        "  </cmmMsgHeader>\n</OpenAPI_ServiceResponse>\n"
    ).encode()


def gateway_json(code: str) -> bytes:
    """The gateway's JSON envelope, sent when JSON was asked for."""
    header = {
        "errMsg": NEW_LAYOUT_NAMES.get(code) or CODE_NAMES.get(code, "UNKNOWN_ERROR"),
        "returnAuthMsg": KOREAN_TEXTS.get(code, "기타에러"),
        "returnReasonCode": code,
    }
    return json.dumps(
        {"OpenAPI_ServiceResponse": {"cmmMsgHeader": header}}, ensure_ascii=False
    ).encode()


def backend_json(code: str, message: str | None = None) -> bytes:
    """The backend's JSON error envelope: a header and no body."""
    header = {"resultCode": code, "resultMsg": message or CODE_NAMES.get(code, "UNKNOWN_ERROR")}
    return json.dumps({"response": {"header": header}}, ensure_ascii=False).encode()


def backend_xml(code: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><response><header>'
        f"<resultCode>{code}</resultCode><resultMsg>{CODE_NAMES.get(code, '')}</resultMsg>"
        "</header></response>"
    ).encode()


# fault kind -> (envelope of a code, Content-Type); the status follows the code (default 200).
ENVELOPE_FORMS = {
    "gateway": (gateway_xml, XML),
    "gateway_new": (gateway_xml_new, XML),
    "gateway_json": (gateway_json, JSON),
    "xml_backend": (backend_xml, XML),
}
NO_KEY_REPLY: Reply = (401, gateway_xml_new("20", "SERVICE_KEY_IS_NULL"), XML)
# Answered before the key is looked at, as a failing gateway or proxy does.
TRANSPORT_REPLIES: dict[str, Reply] = {
    "401": (401, b"Unauthorized", "text/plain"),
    "429": (429, b"Too Many Requests", "text/plain"),
    "500": (500, b"<html><body>Internal Server Error</body></html>", "text/html"),
    "502": (502, b"", "text/html"),
}
# Answered to a request with the right key, in place of the forecast.
FIXED_REPLIES: dict[str, Reply] = {
    "no_key": NO_KEY_REPLY,
    "too_old": (200, backend_json("10", WINDOW_MESSAGE), JSON),
    "garbage": (200, b"Service Unavailable -- try again {", "text/plain"),
}
DATA_FAULTS = {"ok", "timeout", "reset", "empty", "single", "short", "huge", "trickle"}
DATA_FAULTS |= {"trickle_headers", "huge_declared"}
# poison:<kind> -> what it does to one item of a page.
POISONS = {
    "no_value": lambda item: item.pop("fcstValue"),
    "bad_date": lambda item: item.update(fcstDate="2026-11-25"),
    "bad_category": lambda item: item.update(category="XYZ"),
    "other_cell": lambda item: item.update(nx=item["nx"] + 1),
    "other_issuance": lambda item: item.update(baseTime="0030"),
}
TOTAL_NUMBER = re.compile(r"-?[0-9.eE+-]+|NaN|-?Infinity")
FAULT_NAMES = (
    "ok, a code 01..99, gateway:<code>:<status>, gateway_new:<code>:<status>, "
    "gateway_json:<code>:<status>, xml_backend:<code>, no_key, too_old, 401, 429, 500, 502, "
    "timeout, reset, garbage, empty, single, short, huge, huge_declared, trickle, "
    "trickle_headers, "
    "total:<JSON number>, "
    f"poison:<{'|'.join(POISONS)}> (see the module's docstring)"
)


def envelope_reply(fault: str) -> Reply | None:
    """The error envelope a fault name asks for; None if it asks for none."""
    if fault in FIXED_REPLIES:
        return FIXED_REPLIES[fault]
    if fault.isdigit() and len(fault) == 2:
        if fault in BACKEND_CODES:
            return 200, backend_json(fault), JSON
        return 200, gateway_xml(fault), XML
    kind, _, rest = fault.partition(":")
    if kind not in ENVELOPE_FORMS:
        return None
    code, _, status = rest.partition(":")
    build, content_type = ENVELOPE_FORMS[kind]
    return int(status or 200), build(code), content_type


def check_fault(fault: str) -> str:
    """``fault`` if it is one of the names above; else a ValueError listing them."""
    kind, _, rest = fault.partition(":")
    code, _, status = rest.partition(":")
    two_digits = fault.isdigit() and len(fault) == 2
    enveloped = kind in ENVELOPE_FORMS and code.isdigit() and len(code) == 2
    known = fault in DATA_FAULTS | TRANSPORT_REPLIES.keys() | FIXED_REPLIES.keys() or two_digits
    hostile = (kind == "total" and TOTAL_NUMBER.fullmatch(rest)) or (
        kind == "poison" and rest in POISONS
    )
    if not (known or hostile or (enveloped and (status.isdigit() or not status))):
        raise ValueError(f"unknown fake KMA fault {fault!r}; the faults are: {FAULT_NAMES}")
    return fault


def shaped_page(items: list[dict], page: int, rows: int, fault: str) -> dict:
    """The success body of one page, shaped as a data fault (empty, single, short) asks."""
    if fault == "empty":
        return success_body([], page, rows)
    if fault == "short":
        return success_body(items[:-1], page, rows, len(items))
    if fault.startswith("poison:"):
        items = [dict(i) for i in items]
        POISONS[fault.partition(":")[2]](items[0])
    if fault == "single":
        body = success_body(items[:1], page, rows)
        body["response"]["body"]["items"] = {"item": items[0]}
        return body
    return success_body(items, page, rows)


class FakeKma:
    """The fake service on 127.0.0.1 with a free port (or ``port``); a context manager."""

    def __init__(
        self,
        key: str = FAKE_KEY,
        port: int = 0,
        delay: float = 3.0,
        tls: tuple[str, str] | None = None,
    ) -> None:
        """``tls``: (certificate file, key file) to serve HTTPS, as the real portal does."""
        self.key = key
        self.delay = delay  # how long "timeout" waits before answering
        self.huge_bytes = 300 << 20  # the body "huge" sends
        self.trickle_seconds = 1.0  # the pause between the bytes "trickle" sends
        self._mode = "ok"
        self.no_data: set[str] = set()  # issuances (YYYYMMDDHHMM) that answer 03
        self.requests: list[dict[str, str]] = []
        self._queued: deque[str] = deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        scheme = "http"
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.base_url = f"{scheme}://127.0.0.1:{self._server.server_port}{SERVICE_PATH}"

    @property
    def mode(self) -> str:
        """The fault of every request once the queued ones are used."""
        return self._mode

    @mode.setter
    def mode(self, fault: str) -> None:
        self._mode = check_fault(fault)

    def fail(self, *faults: str) -> None:
        """Answer the next requests with these faults, one each, then ``mode``."""
        checked = [check_fault(f) for f in faults]  # all or none are queued
        with self._lock:
            self._queued.extend(checked)

    def reset(self) -> None:
        with self._lock:
            self._queued.clear()
            self.requests.clear()
            self._mode = "ok"
            self.no_data.clear()

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def __enter__(self) -> FakeKma:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- answering -----------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        # parse_qs decodes once, as the gateway does: a double-encoded key stays encoded.
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        with self._lock:
            self.requests.append(query)
            fault = self._queued.popleft() if self._queued else self._mode
        if url.path != OPERATION_PATH:
            return _send(handler, 404, b"Not Found", "text/plain")
        if fault == "reset":
            return _reset(handler)
        if fault == "timeout":
            time.sleep(self.delay)
            fault = "ok"
        reply = self._reply(query, fault)
        if fault in ("huge", "huge_declared") and reply[0] == 200:
            return _send_endless(handler, self.huge_bytes, declared=fault == "huge_declared")
        if fault == "trickle" and reply[0] == 200:
            return _send(handler, *reply, pause=self.trickle_seconds)
        if fault == "trickle_headers" and reply[0] == 200:
            return _trickle_all(handler, reply, self.trickle_seconds)
        return _send(handler, *reply)

    def _reply(self, query: dict[str, str], fault: str) -> Reply:
        if fault in TRANSPORT_REPLIES:
            return TRANSPORT_REPLIES[fault]
        if not query.get("serviceKey"):
            return NO_KEY_REPLY
        if query["serviceKey"] != self.key:
            return 200, gateway_xml("30"), XML
        return envelope_reply(fault) or self._forecast(query, fault)

    def _forecast(self, query: dict[str, str], fault: str) -> Reply:
        missing = [
            p
            for p in ("pageNo", "numOfRows", "base_date", "base_time", "nx", "ny")
            if p not in query
        ]
        if missing:
            return 200, backend_json("11"), JSON
        try:
            page, rows = int(query["pageNo"]), int(query["numOfRows"])
            nx, ny = int(query["nx"]), int(query["ny"])
            base_date, base_time = query["base_date"], query["base_time"]
            datetime.strptime(base_date + base_time, "%Y%m%d%H%M")
            if len(base_time) != 4 or base_time[2:] != "30" or page < 1 or rows < 1:
                raise ValueError
        except ValueError:
            return 200, backend_json("10"), JSON
        if base_date + base_time in self.no_data:
            return 200, backend_json("03"), JSON
        items = forecast_items(base_date, base_time, nx, ny)
        if fault.startswith("total:"):
            # Every page full and the count spelled as given: json.dumps cannot write 1e309.
            body = json.dumps(success_body(items, 1, len(items), -1), ensure_ascii=False)
            body = body.replace('"totalCount": -1', f'"totalCount": {fault[6:]}')
            return 200, body.encode("utf-8"), JSON
        body = shaped_page(items, page, rows, fault)
        return 200, json.dumps(body, ensure_ascii=False).encode("utf-8"), JSON


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str,
    pause: float = 0.0,
) -> None:
    """Answer ``body``; with a ``pause``, one byte at a time, ``pause`` seconds apart."""
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not pause:
            handler.wfile.write(body)
            return
        for index in range(len(body)):
            handler.wfile.write(body[index : index + 1])
            handler.wfile.flush()
            time.sleep(pause)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (its timeout); nothing to answer


def _trickle_all(handler: BaseHTTPRequestHandler, reply: Reply, pause: float) -> None:
    """The whole answer, status line and headers included, one byte every ``pause`` s."""
    status, body, content_type = reply
    head = f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    data = head.encode("latin-1") + body
    handler.close_connection = True
    try:
        for index in range(len(data)):
            handler.wfile.write(data[index : index + 1])
            handler.wfile.flush()
            time.sleep(pause)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up: what it should do


def _send_endless(handler: BaseHTTPRequestHandler, size: int, declared: bool = False) -> None:
    """A success page's start, then ``size`` bytes of items, then close; a Content-Length
    of ``size`` only if ``declared``."""
    item = json.dumps(forecast_items("20261125", "1430", 60, 127)[0]).encode() + b","
    chunk = item * (65536 // len(item))
    handler.close_connection = True
    try:
        handler.send_response(200)
        handler.send_header("Content-Type", JSON)
        if declared:
            handler.send_header("Content-Length", str(size))
        handler.end_headers()
        handler.wfile.write(b'{"response": {"header": {"resultCode": "00"}, "body": {"items": [')
        for _ in range(size // len(chunk)):
            handler.wfile.write(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client stopped reading: what it should do


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Close the connection with a TCP RST (SO_LINGER 0), as a dropped gateway does."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()
    handler.wfile = _Discard()


class _Discard:
    closed = True

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake KMA getUltraSrtFcst (simulated data)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--key", default=FAKE_KEY, help="the service key it accepts")
    parser.add_argument("--mode", default="ok", help=f"fault of every request: {FAULT_NAMES}")
    args = parser.parse_args()
    try:
        check_fault(args.mode)
    except ValueError as exc:
        parser.error(str(exc))
    with FakeKma(key=args.key, port=args.port) as fake:
        fake.mode = args.mode
        print(fake.base_url, flush=True)
        print("fake KMA: serving SIMULATED forecasts; Ctrl-C to stop", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
