"""Pure parts of the weather fetch: issuance arithmetic, the key, reply classification,
item checks."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchserving.weather.issuance import KST, Issuance, latest_issuance
from batchserving.weather.items import ItemError, check_items
from batchserving.weather.kma import normalise_key, scrub
from batchserving.weather.replies import (
    ADVICE,
    RESULT_CODES,
    Fault,
    KmaError,
    count,
    parse_reply,
)


def kst(*args: int) -> datetime:
    return datetime(*args, tzinfo=KST)


@pytest.mark.parametrize(
    ("instant", "base_date", "base_time"),
    [
        (kst(2026, 11, 25, 14, 45), "20261125", "1430"),  # published at :45
        (kst(2026, 11, 25, 14, 44, 59), "20261125", "1330"),  # not yet: the hour before
        (kst(2026, 11, 25, 0, 45), "20261125", "0030"),
        (kst(2026, 11, 25, 0, 10), "20261124", "2330"),  # midnight: the day before
        (kst(2026, 12, 1, 0, 0), "20261130", "2330"),  # month end
        (kst(2026, 3, 1, 0, 30), "20260228", "2330"),  # February, not a leap year
        (kst(2028, 3, 1, 0, 30), "20280229", "2330"),  # leap year
        (kst(2027, 1, 1, 0, 44), "20261231", "2330"),  # year end
        (kst(2026, 11, 25, 23, 59), "20261125", "2330"),
        # Airflow's logical dates are UTC: 2026-12-31 15:45 UTC is 2027-01-01 00:45 KST.
        (datetime(2026, 12, 31, 15, 45, tzinfo=UTC), "20270101", "0030"),
        (datetime(2026, 12, 31, 15, 10, tzinfo=UTC), "20261231", "2330"),
        (datetime(2026, 11, 25, 7, 45, tzinfo=timezone(timedelta(hours=2))), "20261125", "1430"),
    ],
)
def test_latest_issuance(instant: datetime, base_date: str, base_time: str) -> None:
    issuance = latest_issuance(instant)
    assert (issuance.base_date, issuance.base_time) == (base_date, base_time)


def test_step_back_crosses_year_end() -> None:
    first = latest_issuance(kst(2027, 1, 1, 1, 50))
    assert [i.name for i in (first, first.previous(), first.previous().previous())] == [
        "202701010130",
        "202701010030",
        "202612312330",
    ]


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        latest_issuance(datetime(2026, 11, 25, 14, 45))


def test_key_is_decoded_once() -> None:
    decoding = "ab+cd/ef=="
    encoding = quote(decoding, safe="")
    assert encoding == "ab%2Bcd%2Fef%3D%3D"
    assert normalise_key(encoding) == decoding
    assert normalise_key(decoding) == decoding  # '+' stays '+', not a space
    assert normalise_key("0123abcdef" * 6 + "0123") == "0123abcdef" * 6 + "0123"


def test_scrub_removes_every_spelling_of_the_key() -> None:
    key = "ab+cd/ef=="
    text = f"GET /x?serviceKey=ab%2Bcd%2Fef%3D%3D&k={key}&q=ab%2Bcd/ef%3D%3D&p=ab+cd%2Fef=="
    assert "ab" not in scrub(text, key).replace("***", "")


@pytest.mark.parametrize(
    ("status", "body", "fault", "code"),
    [
        (
            200,
            b'{"response":{"header":{"resultCode":"03","resultMsg":"NO_DATA"}}}',
            "NO_DATA",
            "03",
        ),
        (
            403,
            b"<OpenAPI_ServiceResponse><cmmMsgHeader><returnReasonCode>30</returnReasonCode>"
            b"</cmmMsgHeader></OpenAPI_ServiceResponse>",
            "PERMANENT",
            "30",
        ),
        (
            429,
            b"<OpenAPI_ServiceResponse><cmmMsgHeader><returnReasonCode>23</returnReasonCode>"
            b"</cmmMsgHeader></OpenAPI_ServiceResponse>",
            "TRANSIENT",
            "23",
        ),
        (
            200,
            b"<response><header><resultCode>02</resultCode></header></response>",
            "TRANSIENT",
            "02",
        ),
        (502, b"", "TRANSIENT", None),
        (401, b"Unauthorized", "PERMANENT", None),
        (200, b"not json", "PERMANENT", None),
    ],
)
def test_envelopes_are_sniffed(status: int, body: bytes, fault: str, code: str | None) -> None:
    with pytest.raises(KmaError) as caught:
        parse_reply(status, body)
    assert caught.value.fault is Fault[fault] and caught.value.code == code


def test_envelope_without_a_code_falls_back_to_the_status() -> None:
    with pytest.raises(KmaError) as caught:
        parse_reply(429, b"Too Many Requests")
    assert caught.value.fault is Fault.TRANSIENT and caught.value.code is None
    # A gateway envelope naming nothing the table knows: the status decides, its text is kept.
    body = b"<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>"
    with pytest.raises(KmaError, match=r"HTTP 403 \(portal: SERVICE ERROR\)") as caught:
        parse_reply(403, body + b"</cmmMsgHeader></OpenAPI_ServiceResponse>")
    assert caught.value.fault is Fault.PERMANENT


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        # The newer layout may name the code only (05 has two spellings).
        (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<OpenAPI_ServiceResponse><cmmMsgHeader>'
            b"<errMsg>SERVICETIMEOUT_ERROR</errMsg></cmmMsgHeader></OpenAPI_ServiceResponse>",
            "05",
            "code 05 SERVICETIME_OUT (portal: SERVICETIMEOUT_ERROR)",
        ),
        # A 401 with the gateway envelope: no key arrived, and the error says to set one.
        (
            '<?xml version="1.0" encoding="UTF-8"?><OpenAPI_ServiceResponse><cmmMsgHeader>'
            "<errMsg>SERVICE_KEY_IS_NULL</errMsg><returnAuthMsg>서비스 접근거부</returnAuthMsg>"
            "<returnReasonCode>20</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>"
            "".encode(),
            "20",
            "SERVICE_KEY_IS_NULL / 서비스 접근거부): no key reached the gateway",
        ),
    ],
)
def test_gateway_envelopes_of_the_newer_layout(body: bytes, code: str, words: str) -> None:
    with pytest.raises(KmaError) as caught:
        parse_reply(401, body)
    assert caught.value.code == code and words in str(caught.value)


def test_code_10_for_an_old_issuance_says_so() -> None:
    old = {
        "response": {
            "header": {"resultCode": "10", "resultMsg": "최근 1일 간의 자료만 제공합니다."}
        }
    }
    with pytest.raises(KmaError) as caught:
        parse_reply(200, json.dumps(old, ensure_ascii=False).encode())
    text = str(caught.value)
    assert caught.value.fault is Fault.PERMANENT and caught.value.code == "10"
    assert "(portal: 최근 1일 간의 자료만 제공합니다.)" in text
    assert "older than the portal keeps: it serves the last 1 day (about one day" in text
    assert "nx/ny" not in text
    bad = {
        "response": {"header": {"resultCode": "10", "resultMsg": "INVALID_REQUEST_PARAMETER_ERROR"}}
    }
    with pytest.raises(KmaError, match="check weather.nx/ny"):
        parse_reply(200, json.dumps(bad).encode())


def test_code_00_only_from_the_json_backend() -> None:
    ok = {"response": {"header": {"resultCode": "00", "resultMsg": "NORMAL_SERVICE"}}}
    ok["response"]["body"] = {"items": {"item": {"category": "T1H"}}, "totalCount": 1}
    page = parse_reply(200, json.dumps(ok).encode())
    assert page.items == [{"category": "T1H"}] and page.total_count == 1
    xml = b"<response><header><resultCode>00</resultCode></header></response>"
    with pytest.raises(KmaError, match="code 00 in XML from the backend although JSON"):
        parse_reply(200, xml)


# --- every code x every envelope form x HTTP status: the code decides -------------------

ERROR_CODES = sorted(set(RESULT_CODES) - {"00"})
XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn"), blacklist_characters="\ufeff"),
    max_size=40,
)


# Texts the advice reads (tested on their own above) would change the expected advice.
REFINING_TEXT = re.compile(r"^\s*SERVICE_KEY_IS_NULL\s*$|최근\s*\d+\s*일", re.IGNORECASE)
PLAIN_TEXT = XML_TEXT.filter(lambda text: not REFINING_TEXT.search(text))


def gateway_xml_classic(code: str, message: str, as_int: bool) -> bytes:
    return (
        "<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>"
        f"<returnAuthMsg>{escape(message)}</returnAuthMsg>"
        f"<returnReasonCode>{code}</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>"
    ).encode()


def gateway_xml_new(code: str, message: str, as_int: bool) -> bytes:
    return (
        '  <?xml version="1.0" encoding="UTF-8"?>\n<OpenAPI_ServiceResponse>\n <cmmMsgHeader>\n'
        f"  <errMsg>{RESULT_CODES[code][0]}</errMsg>\n"
        f"  <returnAuthMsg>{escape(message)}</returnAuthMsg>\n"
        f"  <returnReasonCode>{code}</returnReasonCode>\n </cmmMsgHeader>\n"
        "</OpenAPI_ServiceResponse>\n"
    ).encode()


def gateway_json(code: str, message: str, as_int: bool) -> bytes:
    header = {
        "errMsg": RESULT_CODES[code][0],
        "returnAuthMsg": message,
        "returnReasonCode": int(code) if as_int else code,
    }
    return json.dumps({"OpenAPI_ServiceResponse": {"cmmMsgHeader": header}}).encode()


def backend_json(code: str, message: str, as_int: bool) -> bytes:
    header = {"resultCode": int(code) if as_int else code, "resultMsg": message}
    return json.dumps({"response": {"header": header}}, ensure_ascii=False).encode()


def backend_xml(code: str, message: str, as_int: bool) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><response><header>'
        f"<resultCode>{code}</resultCode><resultMsg>{escape(message)}</resultMsg>"
        "</header></response>"
    ).encode()


FORMS = [gateway_xml_classic, gateway_xml_new, gateway_json, backend_json, backend_xml]


STATUSES = [200, 400, 401, 403, 404, 429, 500, 502, 503]


@pytest.mark.parametrize("form", FORMS, ids=[f.__name__ for f in FORMS])
@pytest.mark.parametrize("code", ERROR_CODES)
@settings(max_examples=20, deadline=None)
@given(message=PLAIN_TEXT, as_int=st.booleans())
def test_the_code_in_the_envelope_decides_not_the_status(
    code: str, form, message: str, as_int: bool
) -> None:
    """Every code x every envelope form x every status: the code's class, name and advice."""
    name, fault = RESULT_CODES[code]
    said = " ".join(message.split())
    for status in STATUSES:
        with pytest.raises(KmaError) as caught:
            parse_reply(status, form(code, message, as_int))
        error, text = caught.value, str(caught.value)
        assert (error.code, error.fault) == (code, fault), (status, text)
        assert f"(HTTP {status}, " in text and f"answered code {code} {name}" in text
        if said and said.upper() != name:
            assert said in text  # the portal's own words, Korean or not
        assert text.endswith(f": {ADVICE[code]}")  # and what to do


def test_an_undocumented_code_is_retried_and_quoted() -> None:
    header = {"errMsg": "SOMETHING_NEW", "returnAuthMsg": "새 오류", "returnReasonCode": "77"}
    body = json.dumps({"OpenAPI_ServiceResponse": {"cmmMsgHeader": header}}).encode()
    with pytest.raises(KmaError) as caught:
        parse_reply(403, body)
    assert caught.value.fault is Fault.TRANSIENT and caught.value.code == "77"
    assert "code 77 (not in the documented table) (portal: SOMETHING_NEW / 새 오류)" in str(
        caught.value
    )


# --- what the server sends is checked, never trusted -------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [(60, 60), ("60", 60), (0, 0), (" 7 ", 7)])
def test_counts_are_whole_numbers(raw, expected: int) -> None:
    assert count(raw, "totalCount") == expected


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (float("inf"), "inf"),  # what json.loads makes of 1e309 and Infinity
        (float("nan"), "nan"),
        (-1, "-1"),
        (60.0, "60.0"),
        (True, "True"),
        ("1" * 19, "'1111111111111111111'"),
        ("x" * 500, "'" + "x" * 58),  # cut short: an error never quotes an unbounded value
        (None, "None"),
        ([60], "[60]"),
    ],
)
def test_anything_else_is_a_named_permanent_error(raw, shown: str) -> None:
    with pytest.raises(KmaError, match=r"^KMA's totalCount ") as caught:
        count(raw, "totalCount")
    assert caught.value.fault is Fault.PERMANENT
    assert f"totalCount {shown}" in str(caught.value) and len(str(caught.value)) < 200


def test_a_reply_with_totalcount_1e309_is_a_kma_error_not_an_overflow() -> None:
    body = b'{"response": {"header": {"resultCode": "00"}, "body": {"items": {"item": []},'
    with pytest.raises(KmaError, match="totalCount inf is not a whole number"):
        parse_reply(200, body + b' "totalCount": 1e309}}}')


def test_json_nested_too_deep_is_not_a_recursion_error() -> None:
    with pytest.raises(KmaError, match="neither JSON nor XML"):
        parse_reply(200, b"[" * 200_000)


ISSUANCE = Issuance.parse("20261125", "1430")


def item(**changes) -> dict:
    good = {"baseDate": "20261125", "baseTime": "1430", "category": "T1H"}
    good |= {"fcstDate": "20261125", "fcstTime": "1500", "fcstValue": "7", "nx": 60, "ny": 127}
    return good | changes


@pytest.mark.parametrize(
    ("items", "words"),
    [
        ([item(fcstValue=None)], "item 1: fcstValue None of T1H is not a string"),
        ([{k: v for k, v in item().items() if k != "fcstValue"}], "fcstValue None"),
        ([item(fcstValue="9" * 33)], "is not a string of 1 to 32 characters"),
        ([item(fcstDate="2026-11-25")], "fcstDate '2026-11-25' is not [0-9]{8} digits"),
        ([item(fcstDate="20261131")], "20261131/1500 is not a real date and time"),
        ([item(fcstTime="15:00")], "fcstTime '15:00' is not [0-9]{4} digits"),
        ([item(category="t1h")], "category 't1h' is not one of T1H, RN1"),
        ([item(nx="60")], "nx '60' is not an integer from 1 to 149"),
        ([item(ny=True)], "ny True is not an integer"),
        ([item(nx=61)], "is for grid nx=61, ny=127, not 60/127"),
        ([item(baseTime="1400")], "baseTime 20261125/1400: base_time '1400' is not HH30"),
        ([item(baseTime="1330")], "names issuance 202611251330, not 202611251430"),
        ([item(), item(fcstValue="8")], "item 2: T1H at 20261125 1500 appears twice"),
        ([item(), "T1H"], "item 2: an item is str, not an object"),
    ],
)
def test_items_are_checked_field_by_field(items: list, words: str) -> None:
    with pytest.raises(ItemError) as caught:
        check_items(items, ISSUANCE, (60, 127))
    assert words in str(caught.value)


def test_a_whole_issuance_passes_its_checks() -> None:
    from batchserving.weather.fake_kma import forecast_items

    check_items(forecast_items("20261125", "1430", 60, 127), ISSUANCE, (60, 127))


def test_the_portals_own_text_is_quoted_cut_short() -> None:
    said = "가" * 150 + "TAIL"
    body = {"response": {"header": {"resultCode": "10", "resultMsg": said}}}
    with pytest.raises(KmaError) as caught:
        parse_reply(200, json.dumps(body, ensure_ascii=False).encode())
    text = str(caught.value)
    assert "가" * 79 + "…" in text and "가" * 80 not in text and "TAIL" not in text


def test_an_xml_entity_bomb_is_refused_not_expanded() -> None:
    """Ten levels of ten-fold entities (10^10 characters from 600 bytes): expat refuses it."""
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
    )
    body = (
        f'<?xml version="1.0"?><!DOCTYPE r [{entities}]><OpenAPI_ServiceResponse>'
        "<cmmMsgHeader><errMsg>&j;</errMsg></cmmMsgHeader></OpenAPI_ServiceResponse>"
    )
    with pytest.raises(KmaError, match="neither JSON nor XML"):
        parse_reply(200, body.encode())
