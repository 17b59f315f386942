"""Every documented KMA fault, served by the fake, against the real stage in a project clone.

Each failure must name the code or fault, never show the key, retry only transient faults
(the fake counts requests) and leave raw and processed data byte-identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import yaml

from batchserving.core.names import WEATHER_PIPELINE
from batchserving.weather.fake_kma import FAKE_KEY, FakeKma
from tests.conftest import run, snapshot_project, tree_digest

RETRIES = 2  # so a transient fault costs 1 + 2 requests
STEP_BACK = 2  # so NO_DATA costs 1 + 2 requests
DEADLINE = 2.0  # seconds one request may take, body included
BASELINE_AT = "2026-11-25T14:50:00+09:00"  # issuance 202611251430
RUN_AT = "2026-11-25T17:50:00+09:00"  # issuance 202611251730: a success would add a file
KEY_SPELLINGS = (FAKE_KEY, quote(FAKE_KEY, safe=""), quote(FAKE_KEY), "KmA/tEsT", "KmA%2FtEsT")


@pytest.fixture(scope="module")
def kma() -> Iterator[FakeKma]:
    with FakeKma(delay=1.5) as fake:
        yield fake


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, kma: FakeKma) -> Path:
    """A project clone with tiny backoff/timeouts and one issuance fetched and processed."""
    repo = snapshot_project(tmp_path_factory.mktemp("weather-faults"))
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    params["weather"].update(
        retries=RETRIES,
        backoff_seconds=0.01,
        backoff_max_seconds=0.02,
        connect_timeout_seconds=0.5,
        read_timeout_seconds=0.5,
        request_deadline_seconds=DEADLINE,
        step_back_limit=STEP_BACK,
    )
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    assert fetch(repo, kma, BASELINE_AT).returncode == 0
    run([sys.executable, "-m", "stages.preprocess_weather"], cwd=repo)
    return repo


@pytest.fixture
def fake(kma: FakeKma) -> FakeKma:
    kma.reset()
    return kma


def fetch(
    repo: Path, kma: FakeKma, run_at: str = RUN_AT, key: str = FAKE_KEY, cmd: list | None = None
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KMA_SERVICE_KEY": key,
        "KMA_BASE_URL": kma.base_url,
        "WEATHER_RUN_AT": run_at,
    }
    return subprocess.run(
        cmd or [sys.executable, "-m", "stages.fetch_weather"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def weather_files(repo: Path) -> dict[str, str]:
    """Every file under output/weather -> its sha256 (raw, history, latest, state)."""
    return tree_digest(repo / "output" / "weather")


def assert_no_key(*texts: str) -> None:
    for text in texts:
        for spelling in KEY_SPELLINGS:
            assert spelling not in text


TRANSIENT = 1 + RETRIES
NO_DATA = 1 + STEP_BACK
FAULTS = [
    # (fault served, words the error must contain, requests the client may make)
    ("01", "code 01 APPLICATION_ERROR", TRANSIENT),
    ("02", "code 02 DB_ERROR", TRANSIENT),
    ("03", "code 03 NODATA_ERROR", NO_DATA),
    ("04", "code 04 HTTP_ERROR", TRANSIENT),
    ("05", "code 05 SERVICETIME_OUT", TRANSIENT),
    ("10", "code 10 INVALID_REQUEST_PARAMETER_ERROR", 1),
    ("11", "code 11 NO_MANDATORY_REQUEST_PARAMETERS_ERROR", 1),
    ("12", "code 12 NO_OPENAPI_SERVICE_ERROR", 1),
    ("20", "code 20 SERVICE_ACCESS_DENIED_ERROR", 1),
    ("21", "code 21 TEMPORARILY_DISABLE_THE_SERVICEKEY_ERROR", 1),
    ("22", "code 22 LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR", 1),
    ("23", "code 23 LIMITED_NUMBER_OF_SERVICE_REQUESTS_PER_SECOND_EXCEEDS_ERROR", TRANSIENT),
    ("30", "code 30 SERVICE_KEY_IS_NOT_REGISTERED_ERROR", 1),
    ("31", "code 31 DEADLINE_HAS_EXPIRED_ERROR", 1),
    ("32", "code 32 UNREGISTERED_IP_ERROR", 1),
    ("33", "code 33 UNSIGNED_CALL_ERROR", 1),
    ("99", "code 99 UNKNOWN_ERROR", TRANSIENT),
    ("gateway:30:200", "gateway (HTTP 200, XML) answered code 30", 1),
    ("gateway:30:403", "gateway (HTTP 403, XML) answered code 30", 1),
    ("gateway:22:429", "gateway (HTTP 429, XML) answered code 22", 1),
    ("gateway:23:429", "gateway (HTTP 429, XML) answered code 23", TRANSIENT),
    # The gateway's JSON envelope (JSON was asked for): the code decides, not the status.
    (
        "gateway_json:30:403",
        "gateway (HTTP 403, JSON) answered code 30 SERVICE_KEY_IS_NOT_REGISTERED_ERROR "
        "(portal: 등록되지 않은 서비스키): the key is wrong",
        1,
    ),
    ("gateway_json:30:200", "gateway (HTTP 200, JSON) answered code 30", 1),
    (
        "gateway_json:22:429",
        "gateway (HTTP 429, JSON) answered code 22 LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_"
        "ERROR (portal: 서비스 요청제한횟수 초과에러): the daily quota is used up",
        1,
    ),
    ("gateway_json:22:200", "gateway (HTTP 200, JSON) answered code 22", 1),
    ("gateway_json:23:429", "gateway (HTTP 429, JSON) answered code 23", TRANSIENT),
    # The gateway's newer XML layout: a prolog, the code's name in errMsg, Korean text.
    ("gateway_new:30:403", "gateway (HTTP 403, XML) answered code 30", 1),
    ("gateway_new:12:400", "gateway (HTTP 400, XML) answered code 12", 1),
    ("gateway_new:22:429", "gateway (HTTP 429, XML) answered code 22", 1),
    ("gateway_new:05:200", "code 05 SERVICETIME_OUT (portal: SERVICETIMEOUT_ERROR", TRANSIENT),
    (
        "no_key",
        "(HTTP 401, XML) answered code 20 SERVICE_ACCESS_DENIED_ERROR (portal: "
        "SERVICE_KEY_IS_NULL / 서비스 접근거부): no key reached the gateway",
        1,
    ),
    (
        "too_old",
        "code 10 INVALID_REQUEST_PARAMETER_ERROR (portal: 최근 1일 간의 자료만 제공합니다.): the "
        "issuance asked for is older than the portal keeps: it serves the last 1 day",
        1,
    ),
    ("429", "HTTP 429 (too many requests) without a result code", TRANSIENT),
    ("xml_backend:02", "backend (HTTP 200, XML) answered code 02", TRANSIENT),
    ("xml_backend:03", "backend (HTTP 200, XML) answered code 03", NO_DATA),
    ("401", "HTTP 401 ('Unauthorized')", 1),
    ("500", "HTTP 500", TRANSIENT),
    ("502", "HTTP 502", TRANSIENT),
    ("timeout", "timeout after 0.5s", TRANSIENT),
    ("reset", "connection reset", TRANSIENT),
    ("garbage", "neither JSON nor XML", 1),
    ("empty", "empty items", NO_DATA),
    ("short", "totalCount 60 but 59 items", 1),
]


@pytest.mark.parametrize(("fault", "message", "requests_made"), FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_fails_clearly_and_changes_nothing(
    repo: Path, fake: FakeKma, fault: str, message: str, requests_made: int
) -> None:
    before = weather_files(repo)
    fake.mode = fault
    result = fetch(repo, fake)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert fake.request_count == requests_made, fake.requests
    assert_no_key(result.stdout, result.stderr)
    assert weather_files(repo) == before


def test_wrong_key_is_code_30_and_not_echoed(repo: Path, fake: FakeKma) -> None:
    before = weather_files(repo)
    result = fetch(repo, fake, key="Wr0ng+Key/Secret==")
    assert result.returncode != 0 and "code 30" in result.stderr
    assert "Wr0ng" not in result.stdout + result.stderr
    assert fake.request_count == 1
    assert weather_files(repo) == before


def test_missing_key_says_what_to_set(repo: Path, fake: FakeKma) -> None:
    result = fetch(repo, fake, key="")
    assert result.returncode != 0
    assert "KMA_SERVICE_KEY is not set" in result.stderr and "kma_api" in result.stderr
    assert fake.request_count == 0


def test_fake_rejects_a_double_encoded_key_like_the_gateway(fake: FakeKma) -> None:
    query = {"pageNo": 1, "numOfRows": 60, "dataType": "JSON", "nx": 60, "ny": 127}
    query |= {"base_date": "20261125", "base_time": "1430"}
    url = fake.base_url + "/getUltraSrtFcst"
    double = requests.get(url, params={**query, "serviceKey": quote(FAKE_KEY, safe="")}, timeout=5)
    assert "<returnReasonCode>30</returnReasonCode>" in double.text
    once = requests.get(url, params={**query, "serviceKey": FAKE_KEY}, timeout=5)
    assert once.json()["response"]["header"]["resultCode"] == "00"


ENVELOPE_FORMS = [
    # (fault, HTTP status, how the body starts, the code as the body spells it)
    ("gateway_json:22:429", 429, '{"OpenAPI_ServiceResponse": {"cmmMsgHeader": {', '"22"'),
    ("gateway_json:30:403", 403, '{"OpenAPI_ServiceResponse": {"cmmMsgHeader": {', '"30"'),
    ("gateway_json:30:200", 200, '{"OpenAPI_ServiceResponse": {"cmmMsgHeader": {', '"30"'),
    ("gateway_new:30:403", 403, '<?xml version="1.0"', "<returnReasonCode>30<"),
    ("gateway_new:12:400", 400, '<?xml version="1.0"', "<returnReasonCode>12<"),
    ("no_key", 401, '<?xml version="1.0"', "<errMsg>SERVICE_KEY_IS_NULL<"),
    ("too_old", 200, '{"response": {"header": {"resultCode": "10"', "최근 1일 간의 자료만"),
]


@pytest.mark.parametrize(("fault", "status", "start", "code"), ENVELOPE_FORMS)
def test_fake_serves_the_portals_envelope_forms(
    fake: FakeKma, fault: str, status: int, start: str, code: str
) -> None:
    fake.mode = fault
    query = {"pageNo": 1, "numOfRows": 60, "dataType": "JSON", "nx": 60, "ny": 127}
    query |= {"base_date": "20261125", "base_time": "1430", "serviceKey": FAKE_KEY}
    answer = requests.get(fake.base_url + "/getUltraSrtFcst", params=query, timeout=5)
    assert answer.status_code == status
    assert answer.text.startswith(start) and code in answer.text


def test_fake_answers_a_request_without_a_key_with_401(fake: FakeKma) -> None:
    answer = requests.get(fake.base_url + "/getUltraSrtFcst", params={"pageNo": 1}, timeout=5)
    assert answer.status_code == 401 and "<errMsg>SERVICE_KEY_IS_NULL<" in answer.text


def test_fake_refuses_an_unknown_fault_name(fake: FakeKma) -> None:
    with pytest.raises(ValueError, match="unknown fake KMA fault 'gateway_json:x'"):
        fake.mode = "gateway_json:x"
    with pytest.raises(ValueError, match="unknown fake KMA fault"):
        fake.fail("ok", "quota")


def test_encoding_form_key_works_and_is_stored_nowhere(repo: Path, fake: FakeKma) -> None:
    result = fetch(repo, fake, run_at="2026-11-25T15:50:00+09:00", key=quote(FAKE_KEY, safe=""))
    assert result.returncode == 0, result.stderr
    assert fake.request_count == 1
    assert fake.requests[0]["serviceKey"] == FAKE_KEY  # encoded exactly once on the wire
    raw = repo / "output/weather/raw/202611251530.json"
    assert_no_key(result.stdout, result.stderr, raw.read_text(encoding="utf-8"))


def test_transient_faults_are_retried_then_succeed(repo: Path, fake: FakeKma) -> None:
    fake.fail("01", "reset")
    result = fetch(repo, fake, run_at="2026-11-25T16:50:00+09:00")
    assert result.returncode == 0, result.stderr
    assert fake.request_count == 3
    assert (repo / "output/weather/raw/202611251630.json").exists()


def test_no_data_steps_back_and_keys_on_the_echoed_issuance(repo: Path, fake: FakeKma) -> None:
    fake.no_data = {"202611251230"}
    result = fetch(repo, fake, run_at="2026-11-25T12:50:00+09:00")
    assert result.returncode == 0, result.stderr
    assert [r["base_time"] for r in fake.requests] == ["1230", "1130"]
    assert (repo / "output/weather/raw/202611251130.json").exists()
    assert not (repo / "output/weather/raw/202611251230.json").exists()


def test_single_item_object_is_read_as_a_list(repo: Path, fake: FakeKma) -> None:
    fake.mode = "single"
    result = fetch(repo, fake, run_at="2026-11-25T11:50:00+09:00")
    assert result.returncode == 0, result.stderr
    assert "1 items" in result.stdout


def test_dvc_repro_keeps_persisted_data_on_failure(repo: Path, fake: FakeKma) -> None:
    """Through DVC itself: a failed fetch_weather stage deletes nothing (persist)."""
    before = weather_files(repo)
    fake.mode = "30"
    result = fetch(
        repo, fake, cmd=["dvc", "repro", "--single-item", f"{WEATHER_PIPELINE}:fetch_weather"]
    )
    assert result.returncode != 0 and "code 30" in result.stderr
    assert_no_key(result.stdout, result.stderr)
    assert weather_files(repo) == before


# --- hostile answers: bounded in bytes, time, requests; nothing stored -------------------


# Runs the stage as ``python -m`` does and, at exit, writes the process's peak RSS (KiB).
# VmHWM belongs to the process's own memory since its exec; ru_maxrss (getrusage, wait4)
# would also count the pages of the large pytest process the child was forked from.
MEASURED_STAGE = """
import atexit, os, runpy

def report():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["PEAK_RSS_FILE"], "w") as out:
        out.write(peak)

atexit.register(report)
runpy.run_module("stages.fetch_weather", run_name="__main__", alter_sys=True)
"""


def fetch_measured(
    repo: Path,
    kma: FakeKma,
    run_at: str = RUN_AT,
    timeout: float = 30.0,
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess, int, float]:
    """Run the stage in a child; return its result, its peak RSS in MiB and its seconds.

    subprocess.run kills the child (by its pid) if it outlives ``timeout``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak-kib"
        env = {**os.environ, "KMA_SERVICE_KEY": FAKE_KEY, "KMA_BASE_URL": kma.base_url}
        env |= {"WEATHER_RUN_AT": run_at, "PEAK_RSS_FILE": str(peak_file), **(extra_env or {})}
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", MEASURED_STAGE],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        seconds = time.monotonic() - started
        peak = int(peak_file.read_text()) // 1024
    return result, peak, seconds


@pytest.fixture(scope="module")
def baseline_rss(repo: Path, kma: FakeKma) -> int:
    """Peak RSS (MiB) of a good fetch: what a hostile answer may not add much to."""
    kma.reset()
    result, peak, _ = fetch_measured(repo, kma, run_at="2026-11-25T13:50:00+09:00")
    assert result.returncode == 0, result.stderr
    return peak


HOSTILE = [
    # (fault served, words the one-line error must contain, requests the client may make)
    ("huge", "more than 1 MiB in one page", 1),
    ("huge_declared", "more than 1 MiB in one page", 1),
    ("trickle", f"no complete answer within the {DEADLINE:g}s deadline", TRANSIENT),
    ("trickle_headers", f"no complete answer within the {DEADLINE:g}s deadline", TRANSIENT),
    ("total:1000000000000000000", "totalCount 1000000000000000000 is more than", 1),
    ("total:1e309", "totalCount inf is not a whole number from 0", 1),
    ("total:Infinity", "totalCount inf is not a whole number from 0", 1),
    ("total:NaN", "totalCount nan is not a whole number from 0", 1),
    ("total:-60", "totalCount -60 is not a whole number from 0", 1),
    ("total:60.5", "totalCount 60.5 is not a whole number from 0", 1),
    ("poison:no_value", "fcstValue None of ", 1),
    ("poison:bad_date", "fcstDate '2026-11-25' is not [0-9]{8} digits", 1),
    ("poison:bad_category", "category 'XYZ' is not one of T1H", 1),
    ("poison:other_cell", "is for grid nx=61, ny=127, not 60/127", 1),
    ("poison:other_issuance", "names issuance 202611250030, not 202611251730", 1),
]


@pytest.mark.parametrize(
    ("fault", "message", "requests_made"), HOSTILE, ids=[h[0] for h in HOSTILE]
)
def test_hostile_answer_is_bounded_and_stores_nothing(
    repo: Path, fake: FakeKma, baseline_rss: int, fault: str, message: str, requests_made: int
) -> None:
    before = weather_files(repo)
    fake.trickle_seconds = 0.2  # under the 0.5 s read timeout: only a deadline stops it
    fake.mode = fault
    result, peak, seconds = fetch_measured(repo, fake)
    print(f"{fault}: {seconds:.1f}s, peak RSS {peak} MiB (good fetch {baseline_rss} MiB)")
    assert result.returncode == 1, (result.returncode, result.stderr[-500:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fetch_weather: "), result.stderr[-500:]
    assert message in lines[0] and len(lines[0]) < 600, lines[0]
    assert fake.request_count == requests_made, len(fake.requests)
    assert peak < baseline_rss + 24, f"peak RSS {peak} MiB vs {baseline_rss} MiB"
    assert seconds < 3 + requests_made * (DEADLINE + 1)
    assert_no_key(result.stdout, result.stderr)
    assert weather_files(repo) == before


@pytest.fixture(scope="module")
def tls_kma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeKma, str]]:
    """The fake over HTTPS with a certificate for 127.0.0.1 made here, and that certificate."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = str(where / "cert.pem"), str(where / "key.pem")
    run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"]
    )
    with FakeKma(tls=(cert, key)) as fake:
        yield fake, cert


@pytest.mark.parametrize(
    ("fault", "issuance", "message"),
    [
        ("ok", "202611251930", None),
        (
            "trickle_headers",
            "202611252030",
            f"no complete answer within the {DEADLINE:g}s deadline",
        ),
        ("trickle", "202611252030", f"no complete answer within the {DEADLINE:g}s deadline"),
        ("huge", "202611252030", "more than 1 MiB in one page"),
    ],
)
def test_over_https_the_same_bounds_hold(
    repo: Path,
    tls_kma: tuple[FakeKma, str],
    baseline_rss: int,
    fault: str,
    issuance: str,
    message: str | None,
) -> None:
    """The real portal is HTTPS: the deadline and the byte cap hold on TLS connections too
    (certificate checked: the test's own, through REQUESTS_CA_BUNDLE)."""
    kma, cert = tls_kma
    kma.reset()
    kma.trickle_seconds = 0.2
    kma.mode = fault
    run_at = f"2026-11-25T{int(issuance[8:10]):02d}:50:00+09:00"
    result, peak, seconds = fetch_measured(
        repo, kma, run_at=run_at, extra_env={"REQUESTS_CA_BUNDLE": cert}
    )
    raw = repo / f"output/weather/raw/{issuance}.json"
    if message is None:
        assert result.returncode == 0, result.stderr
        assert raw.exists() and kma.request_count == 1
        return
    assert result.returncode == 1 and message in result.stderr, result.stderr[-500:]
    assert not raw.exists() and "Traceback" not in result.stderr
    assert seconds < 3 + kma.request_count * (DEADLINE + 1)
    assert peak < baseline_rss + 24, f"peak RSS {peak} MiB vs {baseline_rss} MiB"


def test_after_a_poisoned_reply_the_next_good_run_stores(repo: Path, fake: FakeKma) -> None:
    raw = repo / "output/weather/raw/202611251830.json"
    fake.mode = "poison:no_value"
    assert fetch(repo, fake, run_at="2026-11-25T18:50:00+09:00").returncode == 1
    assert not raw.exists()
    fake.mode = "ok"
    result = fetch(repo, fake, run_at="2026-11-25T18:50:00+09:00")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(raw.read_text(encoding="utf-8"))["items"]) == 60


# --- a raw file broken on disk: quarantined, the run goes on -----------------------------


BROKEN_RAW = {
    # issuance -> how its stored file is broken
    "202611251530": lambda record: record["items"][0].pop("fcstValue"),  # KeyError before
    "202611251630": lambda record: record["items"][0].update(fcstDate="2026-11-25"),
    "202611251730": None,  # not JSON at all: cut in the middle
}


def preprocess(repo: Path) -> subprocess.CompletedProcess:
    """The stage by hand (``python -m``), as a person or a later run does."""
    command = [sys.executable, "-m", "stages.preprocess_weather"]
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=120)


def test_broken_raw_files_are_quarantined_and_the_run_succeeds(
    tmp_path: Path, kma: FakeKma
) -> None:
    kma.reset()
    repo = snapshot_project(tmp_path / "repo")
    raw_dir = repo / "output/weather/raw"
    assert fetch(repo, kma, run_at="2026-11-25T14:50:00+09:00").returncode == 0
    good = (raw_dir / "202611251430.json").read_text(encoding="utf-8")
    broken: dict[str, bytes] = {}
    for name, breaks in BROKEN_RAW.items():
        record = json.loads(good)
        record["baseTime"] = name[-4:]
        for item in record["items"]:
            item["baseTime"] = name[-4:]
        if breaks:
            breaks(record)
            data = json.dumps(record).encode()
        else:
            data = json.dumps(record).encode()[:500]
        (raw_dir / f"{name}.json").write_bytes(data)
        broken[name] = data
    assert fetch(repo, kma, run_at="2026-11-25T18:50:00+09:00").returncode == 0

    stage = ["dvc", "repro", "--single-item", f"{WEATHER_PIPELINE}:preprocess_weather"]
    result = subprocess.run(stage, cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    quarantine = repo / "output/weather/quarantine"
    for name, data in broken.items():
        assert not (raw_dir / f"{name}.json").exists()
        kept = list(quarantine.glob(f"{name}.*.json"))
        assert len(kept) == 1 and kept[0].read_bytes() == data  # nothing lost
        assert f"quarantined {name}" in result.stdout, result.stdout[-2000:]
    state = json.loads((repo / "output/weather/state.json").read_text(encoding="utf-8"))
    assert state["done"] == ["202611251430", "202611251830"]
    assert sorted(state["quarantined"]) == sorted(broken)
    lock = yaml.safe_load((repo / "weather/dvc.lock").read_text(encoding="utf-8"))
    outs = {o["path"] for o in lock["stages"]["preprocess_weather"]["outs"]}
    assert "output/weather/quarantine" in outs  # versioned with the tables

    # The next run has nothing left to trip on.
    again = preprocess(repo)
    assert again.returncode == 0, again.stderr
    assert "no new or changed raw issuance" in again.stdout

    # A workspace that pulls the raw data as the fetch saved it gets the same bytes back:
    # skipped, not quarantined (nor logged) again.
    restored = raw_dir / "202611251530.json"
    restored.write_bytes(broken["202611251530"])
    again = preprocess(repo)
    assert again.returncode == 0, again.stderr
    assert "no new or changed raw issuance" in again.stdout and restored.exists()
    # Other bytes under that name (a re-fetch) are read as new.
    restored.write_bytes(broken["202611251530"][:-1])
    again = preprocess(repo)
    assert again.returncode == 0 and "quarantined 202611251530" in again.stdout, again.stdout
    assert len(list(quarantine.glob("202611251530.*.json"))) == 2
