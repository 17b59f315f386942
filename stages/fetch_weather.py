"""Stage ``fetch_weather``: save the latest KMA ultra-short forecast issuance for Seoul.

    KMA_SERVICE_KEY=... [KMA_BASE_URL=...] [WEATHER_RUN_AT=2026-11-25T14:45+09:00] \\
        dvc repro weather/dvc.yaml:fetch_weather

``WEATHER_RUN_AT`` (ISO 8601 with an offset; default: now) picks the issuance: the latest
one published at that instant, stepping back on NO_DATA. The answer is saved as
``<raw-dir>/<baseDate><baseTime>.json``, named after the issuance the items echo (which
must be the one asked for: the client checks every item before any is stored), written
atomically. A re-fetch of the same issuance replaces the file (with its new ingestion
time) only when the forecast values changed, so re-running a run changes nothing. Any
failure leaves every stored file as it was and exits non-zero with the code or fault.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchserving.core.atomic import write_json
from batchserving.core.names import WEATHER_RAW_DIR
from batchserving.core.params import ParamsError, WeatherParams
from batchserving.weather.issuance import KST
from batchserving.weather.items import shown
from batchserving.weather.kma import (
    OPERATION,
    ClientSettings,
    Fetched,
    KmaError,
    fetch_latest,
    normalise_key,
    scrub,
)

KEY_ENV = "KMA_SERVICE_KEY"
BASE_URL_ENV = "KMA_BASE_URL"
RUN_AT_ENV = "WEATHER_RUN_AT"
UNEXPECTED_LIMIT = 200  # characters of an unforeseen exception's text in the error


def run_instant(raw: str | None) -> datetime:
    """The run's instant from ``WEATHER_RUN_AT`` (must carry an offset); now if unset."""
    if not raw:
        return datetime.now(KST)
    try:
        instant = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{RUN_AT_ENV}={shown(raw)} is not ISO 8601") from None
    if instant.tzinfo is None:
        raise ValueError(
            f"{RUN_AT_ENV}={shown(raw)} has no UTC offset; e.g. 2026-11-25T14:45+09:00"
        )
    return instant


def settings_from(params: WeatherParams, environ: dict[str, str]) -> ClientSettings:
    """Client settings: params.yaml plus the key and base URL from the environment."""
    key = environ.get(KEY_ENV, "")
    if not key.strip():
        raise ValueError(
            f"{KEY_ENV} is not set: under Airflow add connection kma_api "
            "(password = service key, host = base URL); by hand export "
            f"{KEY_ENV} (and {BASE_URL_ENV} to use another endpoint)"
        )
    return ClientSettings(
        params=params,
        base_url=environ.get(BASE_URL_ENV) or params.base_url,
        service_key=normalise_key(key),
    )


def sorted_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items in a stable order (the service promises none), so equal answers give equal files."""
    return sorted(
        items,
        key=lambda i: (str(i.get("fcstDate")), str(i.get("fcstTime")), str(i.get("category"))),
    )


def raw_record(fetched: Fetched, fetched_at: datetime) -> dict[str, Any]:
    """The raw file's content: the items as received plus where and when they came from."""
    return {
        "service": OPERATION,
        "baseDate": fetched.issuance.base_date,
        "baseTime": fetched.issuance.base_time,
        "requested": {
            "base_date": fetched.requested.base_date,
            "base_time": fetched.requested.base_time,
        },
        "fetched_at": fetched_at.astimezone(UTC).isoformat(timespec="seconds"),
        "items": sorted_items(fetched.items),
    }


def save_issuance(raw_dir: Path, fetched: Fetched, fetched_at: datetime) -> tuple[Path, bool]:
    """Write the issuance's raw file; return (path, written). Unchanged items: file kept."""
    path = raw_dir / f"{fetched.issuance.name}.json"
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            previous = None  # a damaged file is replaced
        if isinstance(previous, dict) and previous.get("items") == sorted_items(fetched.items):
            return path, False
    write_json(path, raw_record(fetched, fetched_at))
    return path, True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw-dir", default=WEATHER_RAW_DIR)
    args = parser.parse_args()
    key = os.environ.get(KEY_ENV)
    try:
        params = WeatherParams.load()
        settings = settings_from(params, dict(os.environ))
        run_at = run_instant(os.environ.get(RUN_AT_ENV))
        print(
            f"fetch_weather: run at {run_at.astimezone(KST).isoformat()} (KST), "
            f"nx={settings.params.nx} ny={settings.params.ny}, {settings.url}",
            flush=True,
        )
        fetched = fetch_latest(settings, run_at)
        path, written = save_issuance(Path(args.raw_dir), fetched, datetime.now(UTC))
    except (ParamsError, KmaError, ValueError) as exc:
        sys.exit(f"fetch_weather: {scrub(str(exc), key)}")
    except Exception as exc:  # noqa: BLE001 - anything else may quote the URL and its key
        text = scrub(str(exc), key)  # scrubbed whole, then cut: no piece of the key is left
        sys.exit(f"fetch_weather: unexpected {type(exc).__name__}: {text[:UNEXPECTED_LIMIT]}")
    state = "saved" if written else "unchanged (same values already stored)"
    print(
        f"fetch_weather: issuance {fetched.issuance.name}: "
        f"{len(fetched.items)} items, {path} {state}"
    )


if __name__ == "__main__":
    main()
