"""A local stand-in for the KMA ultra-short forecast service (``getUltraSrtFcst``).

It answers exactly as ``docs/kma-api.md`` describes: 60 items per
issuance in the documented JSON (values as strings, grid as integers, item order
shuffled), paging by ``pageNo``/``numOfRows``, and every documented fault on demand.
Forecast values are simulated, deterministic per issuance (same issuance => same body).

    python -m batchserving.weather.fake_kma --port 8765   # prints its base URL; serves until Ctrl-C

In tests: ``with FakeKma() as kma: kma.fail("01", "01")`` makes the next two requests
answer code 01, then normal service resumes; ``kma.mode = "500"`` makes every request
fail. ``kma.requests`` records the query of every request (the fake counts them).

Fault names (``fail``/``mode``):
  ``ok`` | a result code ``01``..``99`` (backend JSON for 01-05/10/11, gateway XML for the
  others, HTTP 200) | ``gateway:<code>:<status>`` (XML gateway envelope with that HTTP status)
  | ``xml_backend:<code>`` (XML backend envelope) | ``401`` (plain-text Unauthorized) |
  ``500`` | ``502`` | ``timeout`` (answers after ``delay`` s) | ``reset`` (TCP reset) |
  ``garbage`` (neither JSON nor XML) | ``empty`` (00 with empty items) | ``single`` (one
  item, as an object) | ``short`` (totalCount 120, only 60 items exist).
The registered key is ``key``; a key that arrives double-encoded (``%2B`` decoded once
is still ``%2B``) is refused with gateway code 30, as the real gateway does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import socket
import struct
import sys
import threading
import time
from collections import deque
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SERVICE_PATH = "/1360000/VilageFcstInfoService_2.0"
OPERATION_PATH = SERVICE_PATH + "/getUltraSrtFcst"
# A fake key in the old Decoding form: its Encoding form differs (%2B, %2F, %3D).
FAKE_KEY = "fAkE+KmA/tEsT+sErViCeKeY/0123456789+AbCdEfGhIjKlMnOpQrStUvWxYz=="
CATEGORIES = ("T1H", "RN1", "SKY", "UUU", "VVV", "REH", "PTY", "LGT", "VEC", "WSD")
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


def gateway_xml(code: str) -> bytes:
    """The gateway's XML error envelope (sent even when JSON was asked for)."""
    return (
        "<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>"
        f"<returnAuthMsg>{CODE_NAMES.get(code, 'UNKNOWN_ERROR')}</returnAuthMsg>"
        f"<returnReasonCode>{code}</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>"
    ).encode()


def backend_json(code: str) -> bytes:
    """The backend's JSON error envelope: a header and no body."""
    header = {"resultCode": code, "resultMsg": CODE_NAMES.get(code, "UNKNOWN_ERROR")}
    return json.dumps({"response": {"header": header}}).encode()


def backend_xml(code: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><response><header>'
        f"<resultCode>{code}</resultCode><resultMsg>{CODE_NAMES.get(code, '')}</resultMsg>"
        "</header></response>"
    ).encode()


class FakeKma:
    """The fake service on 127.0.0.1 with a free port (or ``port``); a context manager."""

    def __init__(self, key: str = FAKE_KEY, port: int = 0, delay: float = 3.0) -> None:
        self.key = key
        self.delay = delay  # how long "timeout" waits before answering
        self.mode = "ok"  # the fault of every request once the queued ones are used
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
        self.base_url = f"http://127.0.0.1:{self._server.server_port}{SERVICE_PATH}"

    def fail(self, *faults: str) -> None:
        """Answer the next requests with these faults, one each, then ``mode``."""
        with self._lock:
            self._queued.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self._queued.clear()
            self.requests.clear()
            self.mode = "ok"
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
            fault = self._queued.popleft() if self._queued else self.mode
        if url.path != OPERATION_PATH:
            return _send(handler, 404, b"Not Found", "text/plain")
        if fault == "reset":
            return _reset(handler)
        if fault == "timeout":
            time.sleep(self.delay)
            fault = "ok"
        if fault == "401":
            return _send(handler, 401, b"Unauthorized", "text/plain")
        if fault in ("500", "502"):
            body = b"<html><body>Internal Server Error</body></html>"
            return _send(handler, int(fault), body[:0] if fault == "502" else body, "text/html")
        if query.get("serviceKey") != self.key:
            return _send(handler, 200, gateway_xml("30"), "text/xml")
        if fault.startswith("gateway:"):
            _, code, status = fault.split(":")
            return _send(handler, int(status), gateway_xml(code), "text/xml")
        if fault.startswith("xml_backend:"):
            return _send(handler, 200, backend_xml(fault.split(":")[1]), "text/xml")
        if fault.isdigit() and len(fault) == 2:
            if fault in BACKEND_CODES:
                return _send(handler, 200, backend_json(fault), "application/json")
            return _send(handler, 200, gateway_xml(fault), "text/xml")
        if fault == "garbage":
            return _send(handler, 200, b"Service Unavailable -- try again {", "text/plain")
        return self._forecast(handler, query, fault)

    def _forecast(self, handler: BaseHTTPRequestHandler, query: dict[str, str], fault: str) -> None:
        missing = [
            p
            for p in ("pageNo", "numOfRows", "base_date", "base_time", "nx", "ny")
            if p not in query
        ]
        if missing:
            return _send(handler, 200, backend_json("11"), "application/json")
        try:
            page, rows = int(query["pageNo"]), int(query["numOfRows"])
            nx, ny = int(query["nx"]), int(query["ny"])
            base_date, base_time = query["base_date"], query["base_time"]
            datetime.strptime(base_date + base_time, "%Y%m%d%H%M")
            if len(base_time) != 4 or base_time[2:] != "30" or page < 1 or rows < 1:
                raise ValueError
        except ValueError:
            return _send(handler, 200, backend_json("10"), "application/json")
        if base_date + base_time in self.no_data:
            return _send(handler, 200, backend_json("03"), "application/json")
        items = forecast_items(base_date, base_time, nx, ny)
        total = None
        if fault == "empty":
            items = []
        elif fault == "single":
            items = items[:1]
        elif fault == "short":
            total = 2 * len(items)
        body = success_body(items, page, rows, total)
        if fault == "single":
            body["response"]["body"]["items"] = {"item": items[0]}
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        return _send(handler, 200, data, "application/json;charset=UTF-8")


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (its timeout); nothing to answer


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
    parser.add_argument("--mode", default="ok", help="fault of every request (default: ok)")
    args = parser.parse_args()
    with FakeKma(key=args.key, port=args.port) as fake:
        fake.mode = args.mode
        print(fake.base_url, flush=True)
        print("fake KMA: serving SIMULATED forecasts; Ctrl-C to stop", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
