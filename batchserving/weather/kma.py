"""Client of the KMA ultra-short-term forecast (data portal, ``getUltraSrtFcst``).

Written against ``docs/kma-api.md``: which issuance to ask for, the service key's two
forms, paging by ``totalCount``, retrying only what the spec calls transient, stepping
back on NO_DATA. What one reply means (its envelope, its code) is decided in
``batchserving.weather.replies``; what an item must be, in ``batchserving.weather.items``.

Nothing read from the server is trusted (``docs/kma-api.md``, "Bounds"): a body is read
streaming up to MAX_BODY_BYTES, a request has an overall deadline besides the per-read
timeout (``batchserving.weather.deadline``), pages stop at what one issuance holds, and
every item is checked before any is returned, so a hostile answer stores nothing.

Every failure is a ``KmaError`` whose text names the code or fault and never the key:
requests' own exceptions quote the full URL with its query string, so they are caught
here and replaced, and every message goes through ``scrub`` before it leaves.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from batchserving.core.params import WeatherParams
from batchserving.weather.issuance import Issuance, latest_issuance
from batchserving.weather.items import (
    CATEGORIES,
    FORECAST_HOURS,
    ISSUANCE_ITEMS,
    ItemError,
    check_items,
    shown,
)
from batchserving.weather.replies import Fault, KmaError, Page, parse_reply

if TYPE_CHECKING:
    from batchserving.weather.deadline import Deadline

OPERATION = "getUltraSrtFcst"
# docs/kma-api.md ("Bounds"): a real page of 60 items is about 10 KB; 1 MiB is 100 times
# that and still nothing to hold in memory. A larger body is refused, not read.
MAX_BODY_BYTES = 1 << 20
READ_CHUNK_BYTES = 64 << 10


# --- the key --------------------------------------------------------------------------


def normalise_key(key: str) -> str:
    """The key in its Decoding form: percent-decoded once (``%2B`` -> ``+``).

    The HTTP client encodes it exactly once; an Encoding-form key passed as is would be
    encoded twice (``%2B`` -> ``%252B``) and the gateway would answer code 30. ``+`` is
    kept as ``+`` (``unquote``, not ``unquote_plus``): it is part of Decoding-form keys.
    """
    key = key.strip()
    if not key:
        raise ValueError("the KMA service key is empty")
    return unquote(key)


def key_pattern(key: str) -> re.Pattern[str]:
    """A pattern matching ``key`` however its characters are (percent-, double-) encoded."""
    parts = []
    for char in unquote(key.strip()):
        if char.isalnum():
            parts.append(re.escape(char))
        else:
            hexed = f"{ord(char):02X}"
            parts.append(f"(?:{re.escape(char)}|%{hexed}|%25{hexed})")
    return re.compile("".join(parts), re.IGNORECASE)


def scrub(text: str, key: str | None) -> str:
    """``text`` with every spelling of ``key`` (plain, encoded, double-encoded) as ``***``."""
    if key and key.strip():
        text = key_pattern(key).sub("***", text)
        text = text.replace(key, "***")
    return text


# --- requests -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSettings:
    """Where and how to call KMA: params.yaml ``weather``, plus the endpoint and the key."""

    params: WeatherParams
    base_url: str
    service_key: str  # Decoding form (normalise_key)
    verify_tls: bool = True

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/" + OPERATION


def request_params(settings: ClientSettings, issuance: Issuance, page: int) -> dict[str, Any]:
    """The query of one page request (the key in Decoding form; requests encodes it once)."""
    return {
        "serviceKey": settings.service_key,
        "pageNo": page,
        "numOfRows": settings.params.num_of_rows,
        "dataType": "JSON",
        "base_date": issuance.base_date,
        "base_time": issuance.base_time,
        "nx": settings.params.nx,
        "ny": settings.params.ny,
    }


def too_big(where: str) -> KmaError:
    return KmaError(
        f"{where}: KMA sent more than {MAX_BODY_BYTES >> 20} MiB in one page (a real page of "
        "60 items is about 10 KB): refused unread; check KMA_BASE_URL / the kma_api host",
        Fault.PERMANENT,
    )


def read_body(response: Any, deadline: Deadline, where: str) -> bytes:
    """The whole body of ``response``, at most MAX_BODY_BYTES, complete by ``deadline``.

    ``read1`` returns as soon as any bytes arrive; a read cut short by the deadline (its
    socket shut down) ends the body early, so ``deadline.expired`` is checked after it.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_big(where)
    body = bytearray()
    while chunk := response.raw.read1(READ_CHUNK_BYTES):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_big(where)
    if deadline.expired:
        raise TimeoutError
    return bytes(body)


def network_fault(exc: BaseException, settings: ClientSettings, deadline: Deadline) -> str:
    """What a network exception means, in words that never quote the URL (nor its key)."""
    import requests
    import urllib3.exceptions

    if deadline.expired:  # its sockets were shut down: whatever broke, the deadline did it
        return f"gave no complete answer within the {deadline.seconds:g}s deadline"
    if isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return f"timeout after {settings.params.read_timeout_seconds:g}s"
    if isinstance(exc, requests.ConnectionError | urllib3.exceptions.HTTPError | OSError):
        reset = "reset" in str(exc).lower() or "aborted" in str(exc).lower()
        return "connection reset by the server" if reset else "connection failed"
    return f"request failed ({type(exc).__name__})"


def get_page(session: Any, settings: ClientSettings, issuance: Issuance, page: int) -> Page:
    """One HTTP request, bounded in bytes and in time (``weather.request_deadline_seconds``
    in all, headers and body); network faults become transient KmaErrors without the URL."""
    import requests
    import urllib3.exceptions

    from batchserving.weather.deadline import Deadline

    where = f"{settings.url} (issuance {issuance.name}, page {page})"
    timeout = (settings.params.connect_timeout_seconds, settings.params.read_timeout_seconds)
    with Deadline(settings.params.request_deadline_seconds) as deadline:
        try:
            with session.get(
                settings.url,
                params=request_params(settings, issuance, page),
                timeout=timeout,
                verify=settings.verify_tls,
                stream=True,
            ) as response:
                body = read_body(response, deadline, where)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            fault = network_fault(exc, settings, deadline)
            raise KmaError(f"{where}: KMA {fault}", Fault.TRANSIENT) from None
    try:
        return parse_reply(response.status_code, body)
    except KmaError as exc:
        text = scrub(f"{where}: {exc}", settings.service_key)
        raise KmaError(text, exc.fault, exc.code) from None


def with_retries(
    call: Callable[[], Page], settings: ClientSettings, sleep: Callable[[float], None] = time.sleep
) -> Page:
    """``call()``; on a transient fault retry up to ``weather.retries`` times with backoff."""
    for attempt in range(settings.params.retries + 1):
        try:
            return call()
        except KmaError as exc:
            if exc.fault is not Fault.TRANSIENT or attempt == settings.params.retries:
                if exc.fault is Fault.TRANSIENT:
                    raise KmaError(
                        f"{exc} (gave up after {attempt + 1} attempts; the next run tries again)",
                        exc.fault,
                        exc.code,
                    ) from None
                raise
            delay = min(
                settings.params.backoff_seconds * 2**attempt, settings.params.backoff_max_seconds
            )
            print(
                f"kma: {exc}; retry {attempt + 1}/{settings.params.retries} in {delay:g}s",
                flush=True,
            )
            sleep(delay)
    raise AssertionError("unreachable")


def fetch_issuance(session: Any, settings: ClientSettings, issuance: Issuance) -> list[dict]:
    """All items of one issuance, every page; raise KmaError if they disagree with totalCount.

    Pages are capped by what one issuance holds (ISSUANCE_ITEMS): a larger ``totalCount``
    is refused before a second request, so a lying server cannot keep the client paging.
    """
    first = with_retries(lambda: get_page(session, settings, issuance, 1), settings)
    if first.total_count == 0 or not first.items:
        raise KmaError(
            f"KMA answered 00 with empty items for issuance {issuance.name}: "
            "no data for this issuance",
            Fault.NO_DATA,
            "00",
        )
    if first.total_count > ISSUANCE_ITEMS:
        raise KmaError(
            f"KMA's totalCount {shown(first.total_count)} is more than the "
            f"{ISSUANCE_ITEMS} items one issuance holds ({FORECAST_HOURS} hours x "
            f"{len(CATEGORIES)} categories) for issuance {issuance.name}: refused, nothing "
            "stored; check KMA_BASE_URL / the kma_api host",
            Fault.PERMANENT,
        )
    items = list(first.items)
    pages = math.ceil(first.total_count / settings.params.num_of_rows)
    for page in range(2, pages + 1):
        more = with_retries(lambda page=page: get_page(session, settings, issuance, page), settings)
        if not more.items:
            break
        items.extend(more.items)
    if len(items) != first.total_count:
        raise KmaError(
            f"KMA answered totalCount {first.total_count} but {len(items)} items over "
            f"{pages} pages for issuance {issuance.name}: incomplete answer, nothing stored",
            Fault.PERMANENT,
        )
    return items


@dataclass(frozen=True)
class Fetched:
    """The items of one issuance, the issuance asked for, and the one they belong to."""

    requested: Issuance
    issuance: Issuance
    items: list[dict[str, Any]]


def checked(items: list[dict[str, Any]], settings: ClientSettings, issuance: Issuance) -> Fetched:
    """``items`` as Fetched once every one is a forecast of ``issuance`` for the grid cell
    asked for (``batchserving.weather.items``); else a permanent KmaError naming the item."""
    try:
        check_items(items, issuance, (settings.params.nx, settings.params.ny))
    except ItemError as exc:
        raise KmaError(
            f"KMA answered an item that is not a forecast of the documented shape for "
            f"issuance {issuance.name} ({exc}): refused, nothing stored",
            Fault.PERMANENT,
        ) from None
    return Fetched(requested=issuance, issuance=issuance, items=items)


def fetch_latest(settings: ClientSettings, run_at: datetime, session: Any = None) -> Fetched:
    """Fetch the latest issuance at ``run_at``; on no data step back (bounded), then fail."""
    from batchserving.weather.deadline import deadline_session

    session = session or deadline_session()
    wanted = latest_issuance(run_at)
    issuance = wanted
    for _ in range(settings.params.step_back_limit + 1):
        try:
            items = fetch_issuance(session, settings, issuance)
        except KmaError as exc:
            if exc.fault is not Fault.NO_DATA:
                raise
            print(f"kma: {exc}; stepping back one issuance", flush=True)
            last = exc
            issuance = issuance.previous()
            continue
        return checked(items, settings, issuance)
    raise KmaError(
        f"KMA has no data for issuances {Issuance(issuance.at + timedelta(hours=1)).name}"
        f"..{wanted.name} "
        f"(stepped back {settings.params.step_back_limit} times; last: {last}): the next "
        "run tries again; weather.step_back_limit may look further back, but only within "
        "about one day, all the ultra-short operations keep (older is answered with code 10)",
        Fault.NO_DATA,
        last.code,
    )
