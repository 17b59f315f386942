"""Classify one KMA reply: find its envelope, read its code, decide what the client does.

``docs/kma-api.md`` ("Errors"): the gateway (key, quota, service) answers in an
``OpenAPI_ServiceResponse`` envelope — classic XML, a newer XML layout with a prolog and
the code's name in ``errMsg``, or JSON when JSON was asked for — with HTTP 200, 401, 403
or 429; the backend answers ``response.header`` in JSON (or XML). The same HTTP status
carries different codes (429 is the daily quota with code 22, a per-second limit with
23), so the code in the envelope decides and the HTTP status is read only when no code
can be read at all.

``parse_reply`` is the one entry point: a ``Page`` on code 00, else a ``KmaError`` whose
text names the code, its name, the portal's own message and what to do. Messages here
never hold the key (the client scrubs them once more before they leave).
"""

from __future__ import annotations

import enum
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from batchserving.weather.items import shown


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

# Code names an envelope may carry instead of a number (newer layout: the name in errMsg).
CODE_BY_NAME: dict[str, str] = {name: code for code, (name, _) in RESULT_CODES.items()} | {
    "NO_DATA": "03",
    "SERVICETIMEOUT_ERROR": "05",
    "SERVICE_KEY_IS_NULL": "20",
}

# What a person should do, per code.
ADVICE = {
    "01": "a failure inside the portal; retried with backoff",
    "02": "a failure inside the portal; retried with backoff",
    "03": "no data for this issuance",
    "04": "a failure inside the portal; retried with backoff",
    "05": "the portal's backend timed out; retried with backoff",
    "10": "check weather.nx/ny and the issuance sent (base_date/base_time)",
    "11": "a mandatory parameter is missing; check weather.* in params.yaml",
    "12": "the service is not at this URL; check KMA_BASE_URL / the kma_api host",
    "20": "the key is not approved for this service; apply for it on data.go.kr",
    "21": "the key is temporarily disabled; see the data.go.kr account",
    "22": (
        "the daily quota is used up (10,000 calls a day on a development key); not retried "
        "in this run: the quota resets at midnight KST, or ask data.go.kr for a larger one"
    ),
    "23": "too many calls per second; retried after a pause",
    "30": "the key is wrong, double-encoded or not active yet (new keys take ~1 h)",
    "31": "the key's usage period has expired; extend it on data.go.kr",
    "32": "this machine's IP is not registered for the key",
    "33": "the call was not signed as the service requires",
    "99": "an unknown failure inside the portal; retried with backoff",
}
NO_KEY_ADVICE = (
    "no key reached the gateway; set the kma_api connection's password (or KMA_SERVICE_KEY by hand)"
)
# Code 10 also answers a base_date outside the kept window, e.g. "최근 1일 간의 자료만 제공합니다."
WINDOW_MESSAGE = re.compile(r"최근\s*(\d+)\s*일")
MESSAGE_LIMIT = 80  # characters of the portal's own text quoted in an error


class KmaError(RuntimeError):
    """A failed KMA call; ``fault`` says whether to retry, step back or give up."""

    def __init__(self, message: str, fault: Fault, code: str | None = None) -> None:
        super().__init__(message)
        self.fault = fault
        self.code = code


@dataclass(frozen=True)
class Page:
    """One successful page: its items and the ``totalCount`` the server claims."""

    items: list[dict[str, Any]]
    total_count: int


@dataclass(frozen=True)
class Envelope:
    """What a reply's envelope says: who answered, in which form, the code and the texts."""

    layer: str  # "gateway" (OpenAPI_ServiceResponse) or "backend" (response.header)
    form: str  # "XML" or "JSON"
    code: str | None  # two digits, or None when the envelope names no code it can be read as
    messages: tuple[str, ...]  # errMsg, returnAuthMsg / resultMsg as sent, empty ones left out
    body: Any = None  # the JSON backend's ``body`` (the items of a success)


# --- finding the envelope -------------------------------------------------------------


def normal_code(raw: Any, messages: tuple[str, ...] = ()) -> str | None:
    """``raw`` as a two-digit code (``3`` -> ``03``); else the code a message names, if any."""
    text = str(raw).strip() if raw is not None else ""
    if text.isdigit():
        return text.zfill(2)
    for message in (text, *messages):
        if message.upper() in CODE_BY_NAME:
            return CODE_BY_NAME[message.upper()]
    return None


def _texts(*values: Any) -> tuple[str, ...]:
    """The non-empty texts among ``values``, whitespace collapsed."""
    return tuple(" ".join(str(v).split()) for v in values if v is not None and str(v).strip())


def _xml_envelope(data: bytes) -> Envelope | None:
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None

    def text(tag: str) -> str | None:
        found = root.find(f".//{tag}")
        return found.text if found is not None else None

    if root.find(".//cmmMsgHeader") is not None or root.tag == "OpenAPI_ServiceResponse":
        messages = _texts(text("errMsg"), text("returnAuthMsg"))
        return Envelope("gateway", "XML", normal_code(text("returnReasonCode"), messages), messages)
    if root.find(".//resultCode") is not None:
        messages = _texts(text("resultMsg"))
        return Envelope("backend", "XML", normal_code(text("resultCode"), messages), messages)
    return None


def _json_envelope(data: bytes) -> Envelope | None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        return None
    if not isinstance(document, dict):
        return None
    gateway = document.get("OpenAPI_ServiceResponse")
    if isinstance(gateway, dict):
        header = gateway.get("cmmMsgHeader", gateway)
        header = header if isinstance(header, dict) else {}
        messages = _texts(header.get("errMsg"), header.get("returnAuthMsg"))
        code = normal_code(header.get("returnReasonCode"), messages)
        return Envelope("gateway", "JSON", code, messages)
    response = document.get("response")
    header = response.get("header") if isinstance(response, dict) else None
    if isinstance(header, dict) and "resultCode" in header:
        messages = _texts(header.get("resultMsg"))
        body = response.get("body") or {}
        code = normal_code(header["resultCode"], messages)
        return Envelope("backend", "JSON", code, messages, body)
    return None


def read_envelope(body: bytes) -> Envelope | None:
    """The envelope of ``body``: XML if it starts with ``<`` (after a BOM and whitespace), else
    JSON; None when there is none of the documented shapes (HTML, plain text, garbage)."""
    data = body.removeprefix(b"\xef\xbb\xbf").strip()
    return _xml_envelope(data) if data.startswith(b"<") else _json_envelope(data)


# --- deciding -------------------------------------------------------------------------


def portal_says(messages: tuple[str, ...], name: str = "") -> str:
    """The portal's own texts worth quoting (not a bare repeat of the code's name)."""
    quoted = [m for m in dict.fromkeys(messages) if m.upper() != name]
    if not quoted:
        return ""
    text = " / ".join(quoted)
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 1] + "…"
    return f" (portal: {text})"


def window_advice(messages: tuple[str, ...]) -> str | None:
    """For code 10: what to say when the portal's text says the issuance is out of its window."""
    for message in messages:
        found = WINDOW_MESSAGE.search(message)
        if found:
            days = int(found.group(1))
            return (
                f"the issuance asked for is older than the portal keeps: it serves the last "
                f"{days} day{'s' if days != 1 else ''} (about one day for the ultra-short "
                "operations, getUltraSrtFcst included); a run or backfill older than that "
                "cannot be fetched"
            )
    return None


def advice(code: str, messages: tuple[str, ...]) -> str:
    """What to do about ``code``, refined by the portal's texts where they say more."""
    upper = {m.upper() for m in messages}
    if code == "20" and "SERVICE_KEY_IS_NULL" in upper:
        return NO_KEY_ADVICE
    if code == "10":
        return window_advice(messages) or ADVICE["10"]
    return ADVICE.get(code, "an undocumented code; retried with backoff")


def code_error(envelope: Envelope, status: int) -> KmaError:
    """The KmaError for an envelope whose code is not 00 (unknown codes count as transient)."""
    code = envelope.code
    name, fault = RESULT_CODES.get(code, ("(not in the documented table)", Fault.TRANSIENT))
    text = (
        f"KMA {envelope.layer} (HTTP {status}, {envelope.form}) answered code {code} {name}"
        f"{portal_says(envelope.messages, name)}: {advice(code, envelope.messages)}"
    )
    return KmaError(text, fault, code)


def status_error(status: int, body: bytes, envelope: Envelope | None) -> KmaError:
    """The KmaError for a reply without a readable code: the HTTP status decides."""
    said = portal_says(envelope.messages) if envelope else ""
    if status >= 500:
        return KmaError(f"KMA answered HTTP {status} (server error){said}", Fault.TRANSIENT)
    if status == 429:
        return KmaError(
            f"KMA answered HTTP 429 (too many requests) without a result code{said}: backing off",
            Fault.TRANSIENT,
        )
    if status != 200:
        snippet = said or f" ({body[:60].decode('utf-8', errors='replace').strip()!r})"
        check = (
            "KMA_BASE_URL / the kma_api host"
            if status == 404
            else "the key and the kma_api connection"
        )
        return KmaError(
            f"KMA answered HTTP {status}{snippet.replace(chr(10), ' ')}: check {check}",
            Fault.PERMANENT,
        )
    return KmaError(
        f"KMA answered HTTP 200 with a body that is neither JSON nor XML of the expected "
        f"shape ({len(body)} bytes){said}: the service at this URL is not getUltraSrtFcst "
        "or is failing; check KMA_BASE_URL / the kma_api host",
        Fault.PERMANENT,
    )


def parse_reply(status: int, body: bytes) -> Page:
    """One reply as a Page (code 00, backend JSON), else the KmaError its code calls for."""
    envelope = read_envelope(body)
    if envelope is None or envelope.code is None:
        raise status_error(status, body, envelope)
    if envelope.code != "00":
        raise code_error(envelope, status)
    if envelope.form != "JSON" or envelope.layer != "backend":
        raise KmaError(
            f"KMA answered code 00 in {envelope.form} from the {envelope.layer} although JSON "
            "was asked for: check KMA_BASE_URL / the kma_api host",
            Fault.PERMANENT,
            "00",
        )
    return json_page(envelope.body)


def json_page(body: Any) -> Page:
    """The items and totalCount of a JSON success body."""
    body = body if isinstance(body, dict) else {}
    items = body.get("items")
    # Empty results come as "items": "" (or {}); one item may come as an object, not a list.
    item = items.get("item", []) if isinstance(items, dict) else []
    if isinstance(item, dict):
        item = [item]
    if not isinstance(item, list) or not all(isinstance(i, dict) for i in item):
        raise KmaError("KMA answered items of an unexpected shape", Fault.PERMANENT)
    return Page(item, count(body.get("totalCount", len(item)), "totalCount"))


COUNT_DIGITS = re.compile(r"[0-9]{1,18}")


def count(raw: Any, field: str) -> int:
    """A count the server sent (a JSON integer, or its digits as a string) as an int >= 0.

    JSON parsing turns ``1e309`` and ``Infinity`` into float infinity and ``NaN`` into a
    float NaN; none of them, nor a negative, fractional, boolean or 19-digit value, is a
    count: each is a permanent KmaError naming the field and the value (cut short).
    """
    if isinstance(raw, str) and COUNT_DIGITS.fullmatch(raw.strip()):
        return int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    raise KmaError(
        f"KMA's {field} {shown(raw)} is not a whole number from 0 up: the answer is not "
        "getUltraSrtFcst's; check KMA_BASE_URL / the kma_api host",
        Fault.PERMANENT,
    )
