"""An overall deadline for one HTTP request made with requests: headers and body included.

requests' ``timeout`` bounds each read of the socket, not the request: a server sending a
byte per read timeout holds a request for ever. A session from ``deadline_session`` hands
each request's socket to the thread's current ``Deadline`` when the response is awaited;
when the deadline's time is up a timer thread shuts those sockets down, so the blocked
read returns at once and the request fails, whatever phase it is in.

    with Deadline(30.0) as deadline:
        response = session.get(url, stream=True, timeout=(5, 20))
        ...  # read the body; deadline.expired says why a read came back short
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection

_current = threading.local()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to stop
        sock.shutdown(socket.SHUT_RDWR)


class Deadline:
    """The time one request may take; a context manager that arms it for this thread."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._at = time.monotonic() + seconds
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def left(self) -> float:
        """Seconds until the deadline (negative once past)."""
        return self._at - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline (at once if it is past)."""
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)

    def __enter__(self) -> Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _current.deadline = None


class _Watched:
    """Hands the connection's socket to the thread's Deadline before the response is read
    (new and kept-alive connections alike: every request awaits its response here)."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None and self.sock is not None:
            deadline.watch(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose pools make watched connections."""

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        pool = super().get_connection_with_tls_context(*args, **kwargs)
        https = pool.scheme == "https"
        pool.ConnectionCls = WatchedHTTPSConnection if https else WatchedHTTPConnection
        return pool


def deadline_session() -> requests.Session:
    """A requests session whose requests a ``Deadline`` can cut off."""
    session = requests.Session()
    adapter = DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
