"""Client of the KMA ultra-short-term forecast (data portal, ``getUltraSrtFcst``).

Written against ``docs/kma-api.md``: which issuance to ask for, the
service key's two forms, paging by ``totalCount``, the two error envelopes (XML from the
gateway even when JSON was asked for, JSON from the backend) and the result-code table.

Every failure is a ``KmaError`` whose text names the code or fault and never the key:
requests' own exceptions quote the full URL with its query string, so they are caught
here and replaced, and every message goes through ``scrub`` before it leaves.
"""

from __future__ import annotations

import enum
import json
import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from batchserving.core.params import WeatherParams
from batchserving.weather.issuance import Issuance, latest_issuance

OPERATION = "getUltraSrtFcst"


class Fault(enum.Enum):
    """What the client does about an answer (the spec's table, "what the client does")."""

    TRANSIENT = "transient"  # retry with backoff, bounded
    PERMANENT = "permanent"  # fail this run at once
    NO_DATA = "no data"  # step back one issuance, bounded


# code -> (name, class). 22 (daily quota) is permanent for this run: retrying burns quota.
RESULT_CODES: dict[str, tuple[str, Fault]] = {
    "01": ("APPLICATION_ERROR", Fault.TRANSIENT),
    "02": ("DB_ERROR", Fault.TRANSIENT),
    "03": ("NODATA_ERROR", Fault.NO_DATA),
    "04": ("HTTP_ERROR", Fault.TRANSIENT),
    "05": ("SERVICETIME_OUT", Fault.TRANSIENT),
    "10": ("INVALID_REQUEST_PARAMETER_ERROR", Fault.PERMANENT),
    "11": ("NO_MANDATORY_REQUEST_PARAMETERS_ERROR", Fault.PERMANENT),
    "12": ("NO_OPENAPI_SERVICE_ERROR", Fault.PERMANENT),
    "20": ("SERVICE_ACCESS_DENIED_ERROR", Fault.PERMANENT),
    "21": ("TEMPORARILY_DISABLE_THE_SERVICEKEY_ERROR", Fault.PERMANENT),
    "22": ("LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR", Fault.PERMANENT),
    "23": ("LIMITED_NUMBER_OF_SERVICE_REQUESTS_PER_SECOND_EXCEEDS_ERROR", Fault.TRANSIENT),
    "30": ("SERVICE_KEY_IS_NOT_REGISTERED_ERROR", Fault.PERMANENT),
    "31": ("DEADLINE_HAS_EXPIRED_ERROR", Fault.PERMANENT),
    "32": ("UNREGISTERED_IP_ERROR", Fault.PERMANENT),
    "33": ("UNSIGNED_CALL_ERROR", Fault.PERMANENT),
    "99": ("UNKNOWN_ERROR", Fault.TRANSIENT),
}

# What a person should do about a permanent code.
ADVICE = {
    "10": "check weather.nx/ny and the issuance sent (base_date/base_time)",
    "11": "a mandatory parameter is missing; check weather.* in params.yaml",
    "12": "the service is not at this URL; check KMA_BASE_URL / the kma_api host",
    "20": "the key is not approved for this service; apply for it on data.go.kr",
    "21": "the key is temporarily disabled; see the data.go.kr account",
    "22": "the daily quota is used up; the next run after midnight KST will work",
    "30": "the key is wrong, double-encoded or not active yet (new keys take ~1 h)",
    "31": "the key's usage period has expired; extend it on data.go.kr",
    "32": "this machine's IP is not registered for the key",
    "33": "the call was not signed as the service requires",
}


class KmaError(RuntimeError):
    """A failed KMA call; ``fault`` says whether to retry, step back or give up."""

    def __init__(self, message: str, fault: Fault, code: str | None = None) -> None:
        super().__init__(message)
        self.fault = fault
        self.code = code


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


# --- parsing answers ------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One successful page: its items and the ``totalCount`` the server claims."""

    items: list[dict[str, Any]]
    total_count: int


def code_error(code: str, message: str, where: str) -> KmaError:
    """The KmaError for a non-00 result code (unknown codes count as transient)."""
    name, fault = RESULT_CODES.get(code, (f"unknown code {code}", Fault.TRANSIENT))
    text = f"KMA {where} answered code {code} {name}"
    if message and message != name:
        text += f" ({message})"
    if code == "03":
        text += ": no data for this issuance"
    elif fault is Fault.PERMANENT:
        text += f": {ADVICE.get(code, 'not retried')}"
    return KmaError(text, fault, code)


def _xml_text(root: ET.Element, tag: str) -> str:
    found = root.find(f".//{tag}")
    return (found.text or "").strip() if found is not None else ""


def parse_body(status: int, body: bytes) -> Page:
    """Sniff and parse one answer: XML gateway, XML backend or JSON; raise KmaError if not 00.

    A result code in the body decides (the gateway sends its XML with HTTP 200, 403 or
    429); without one, the HTTP status does: 5xx and 429 are transient, other non-200
    statuses permanent.
    """
    text = body.decode("utf-8", errors="replace").strip()
    root = None
    if text.startswith("<"):
        try:
            root = ET.fromstring(text)
        except ET.ParseError:
            root = None
    if root is not None:
        gateway_code = _xml_text(root, "returnReasonCode")
        if gateway_code:
            message = _xml_text(root, "returnAuthMsg") or _xml_text(root, "errMsg")
            raise code_error(gateway_code, message, f"gateway (HTTP {status}, XML)")
        backend_code = _xml_text(root, "resultCode")
        if backend_code and backend_code != "00":
            where = f"backend (HTTP {status}, XML)"
            raise code_error(backend_code, _xml_text(root, "resultMsg"), where)
    if status >= 500:
        raise KmaError(f"KMA answered HTTP {status} (server error)", Fault.TRANSIENT)
    if status == 429:
        raise KmaError("KMA answered HTTP 429 (too many requests)", Fault.TRANSIENT)
    if status != 200:
        snippet = text[:60].replace("\n", " ")
        raise KmaError(
            f"KMA answered HTTP {status} ({snippet!r}): check the key and the kma_api connection",
            Fault.PERMANENT,
        )
    if root is not None:
        raise KmaError(
            "KMA answered XML without a result code although JSON was asked for", Fault.PERMANENT
        )
    try:
        data = json.loads(text)
        header = data["response"]["header"]
        code = str(header["resultCode"])
    except (ValueError, KeyError, TypeError):
        raise KmaError(
            f"KMA answered HTTP 200 with a body that is neither JSON nor XML "
            f"of the expected shape ({len(body)} bytes)",
            Fault.PERMANENT,
        ) from None
    if code != "00":
        raise code_error(code, str(header.get("resultMsg", "")), "backend (JSON)")
    return _json_page(data["response"].get("body") or {})


def _json_page(body: dict[str, Any]) -> Page:
    items = body.get("items")
    # Empty results come as "items": "" (or {}); one item may come as an object, not a list.
    item = items.get("item", []) if isinstance(items, dict) else []
    if isinstance(item, dict):
        item = [item]
    if not isinstance(item, list) or not all(isinstance(i, dict) for i in item):
        raise KmaError("KMA answered items of an unexpected shape", Fault.PERMANENT)
    try:
        total = int(body.get("totalCount", len(item)))
    except (TypeError, ValueError):
        raise KmaError("KMA answered a non-numeric totalCount", Fault.PERMANENT) from None
    return Page(item, total)


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


def get_page(session: Any, settings: ClientSettings, issuance: Issuance, page: int) -> Page:
    """One HTTP request; network faults become transient KmaErrors without the URL."""
    import requests

    where = f"{settings.url} (issuance {issuance.name}, page {page})"
    try:
        response = session.get(
            settings.url,
            params=request_params(settings, issuance, page),
            timeout=(settings.params.connect_timeout_seconds, settings.params.read_timeout_seconds),
            verify=settings.verify_tls,
        )
        body = response.content
    except requests.Timeout:
        fault = f"timeout after {settings.params.read_timeout_seconds:g}s"
    except requests.ConnectionError as exc:
        reset = "reset" in str(exc).lower() or "aborted" in str(exc).lower()
        fault = "connection reset by the server" if reset else "connection failed"
    except requests.RequestException as exc:
        fault = f"request failed ({type(exc).__name__})"
    else:
        try:
            return parse_body(response.status_code, body)
        except KmaError as exc:
            text = scrub(f"{exc} from {where}", settings.service_key)
            raise KmaError(text, exc.fault, exc.code) from None
    raise KmaError(f"KMA {fault}: {where}", Fault.TRANSIENT)


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
                        f"{exc} (gave up after {attempt + 1} attempts)", exc.fault, exc.code
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
    """All items of one issuance, every page; raise KmaError if they disagree with totalCount."""
    first = with_retries(lambda: get_page(session, settings, issuance, 1), settings)
    if first.total_count == 0 or not first.items:
        raise KmaError(
            f"KMA answered 00 with empty items for issuance {issuance.name}: "
            "no data for this issuance",
            Fault.NO_DATA,
            "00",
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


def echoed_issuance(items: list[dict[str, Any]], settings: ClientSettings) -> Issuance:
    """The issuance the items name (all must agree, and be for the grid cell asked for)."""
    bases = {(str(i.get("baseDate")), str(i.get("baseTime"))) for i in items}
    if len(bases) != 1:
        raise KmaError(f"KMA items name {len(bases)} issuances, expected one", Fault.PERMANENT)
    cells = {(i.get("nx"), i.get("ny")) for i in items}
    if cells != {(settings.params.nx, settings.params.ny)}:
        raise KmaError(
            f"KMA items are for grid cells {sorted(cells, key=str)}, "
            f"not nx={settings.params.nx}, ny={settings.params.ny}",
            Fault.PERMANENT,
        )
    try:
        return Issuance.parse(*bases.pop())
    except ValueError as exc:
        raise KmaError(f"KMA items carry a malformed issuance: {exc}", Fault.PERMANENT) from None


def fetch_latest(settings: ClientSettings, run_at: datetime, session: Any = None) -> Fetched:
    """Fetch the latest issuance at ``run_at``; on no data step back (bounded), then fail."""
    import requests

    session = session or requests.Session()
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
        return Fetched(requested=issuance, issuance=echoed_issuance(items, settings), items=items)
    raise KmaError(
        f"KMA has no data for issuances {Issuance(issuance.at + timedelta(hours=1)).name}"
        f"..{wanted.name} "
        f"(stepped back {settings.params.step_back_limit} times; last: {last}); the portal keeps "
        "about 3 days, so an older run cannot be fetched",
        Fault.NO_DATA,
        last.code,
    )
