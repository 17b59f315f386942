"""Stage ``preprocess_weather``: raw KMA issuances -> a history table and a latest table.

Outputs (parquet datasets: ``pandas.read_parquet(dir)`` reads one as a single table):
``history/`` (long rows, one per forecast value and issuance), ``latest/`` (one row per
forecast hour, the latest issuance winning per category), ``state.json`` (the issuances
processed) and ``quarantine/`` (raw files that could not be read, moved out of ``raw/``);
``batchserving.weather.store`` describes each. Incremental: a run reads only new or
changed raw files, so an hourly run costs the same after a year as after a day. Every
output is a DVC ``persist`` output: DVC must not delete it before the stage runs.
``--rebuild`` ignores the state and reprocesses every raw file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from batchserving.core.names import WEATHER_DIR, WEATHER_RAW_DIR
from batchserving.weather.store import update
from batchserving.weather.tables import RawFileError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw-dir", default=WEATHER_RAW_DIR)
    parser.add_argument("--out-dir", default=WEATHER_DIR)
    parser.add_argument("--rebuild", action="store_true", help="reprocess every raw file")
    args = parser.parse_args()
    try:
        done = update(Path(args.raw_dir), Path(args.out_dir), rebuild=args.rebuild)
    except RawFileError as exc:
        sys.exit(f"preprocess_weather: {exc}")
    if done:
        print(f"preprocess_weather: processed {len(done)} issuance(s): {done[0]}..{done[-1]}")
    else:
        print("preprocess_weather: no new or changed raw issuance; tables unchanged")


if __name__ == "__main__":
    main()
