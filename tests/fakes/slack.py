"""A local stand-in for a Slack incoming webhook: records every message posted to it.

``mode`` makes it misbehave like a real outage: ``"ok"`` answers 200 ``ok``, ``"error"``
answers 500, ``"slow"`` answers after ``delay`` seconds.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlackReceiver:
    """Context manager running the receiver on 127.0.0.1 with a free port."""

    def __init__(self, mode: str = "ok", delay: float = 0.0) -> None:
        self.mode = mode
        self.delay = delay
        self.messages: list[dict] = []
        self.arrivals: list[float] = []  # time.monotonic() of each message, as it arrived
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.arrivals.append(time.monotonic())
                    receiver.messages.append(json.loads(body or b"{}"))
                if receiver.mode == "slow":
                    time.sleep(receiver.delay)
                status, text = (
                    (500, b"internal_error") if receiver.mode == "error" else (200, b"ok")
                )
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}/services/T0/B0/X"

    @property
    def texts(self) -> list[str]:
        with self._lock:
            return [m.get("text", "") for m in self.messages]

    def __enter__(self) -> SlackReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
