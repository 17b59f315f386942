"""Write a whole KST day of scheduled predictions, optionally drifted, to try monitoring.

    python -m scripts.served_day --day 2026-03-01 [--shift petal_length=1.5] [--every 5]

In the model repo (``MODEL_REPO``, else ``.model-repo/``): for every scheduled run of the
day (every ``--every`` minutes, 288 runs at 5), scores the seeded sample that run draws
with the deployed model (``output/serving``) and writes its file exactly where
``batch_inference`` would, with the same lineage columns. ``--shift FEATURE=CM`` adds CM
to that feature of every sampled row before scoring (repeatable): the drifted day that
``make run DAG=monitor_predictions DATE=<day>`` should flag. An existing file is
replaced. Needs a deployed model (``make demo`` deploys one).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path

from batchserving.core.names import SERVING_DIR
from batchserving.core.params import InferenceParams, ParamsError
from batchserving.monitoring.days import DayError, parse_day, window
from batchserving.serving.deployment import read_deployment
from batchserving.serving.predict import prediction_path
from batchserving.serving.scoring import Lineage, load_model, write_sample_predictions
from batchserving.training.iris import FEATURES

MAX_SHIFT_CM = 100.0


def parse_shift(text: str) -> tuple[str, float]:
    """``FEATURE=CM`` with a known feature and a finite shift of at most 100 cm."""
    feature, _, amount = text.partition("=")
    try:
        value = float(amount)
    except ValueError:
        value = float("nan")
    if feature not in FEATURES or not abs(value) <= MAX_SHIFT_CM:
        raise argparse.ArgumentTypeError(
            f"--shift {text[:40]!r}: use FEATURE=CM with a feature of {', '.join(FEATURES)} "
            f"and at most {MAX_SHIFT_CM:g} cm"
        )
    return feature, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--day", required=True, help="the KST day, YYYY-MM-DD")
    parser.add_argument("--shift", type=parse_shift, action="append", default=[])
    parser.add_argument("--every", type=int, default=5, choices=range(1, 61), metavar="MIN")
    args = parser.parse_args()
    from batchserving.registry.workspace import ensure_workspace

    try:
        day = parse_day(args.day)
        os.chdir(ensure_workspace())
        deployment = read_deployment(Path(SERVING_DIR))
        model = load_model(deployment, 1)
        n = InferenceParams.load().n_samples
    except (DayError, ParamsError, RuntimeError) as exc:
        sys.exit(f"served_day: {exc}")
    record = deployment.record
    start, end = window(day)
    at, written = start, 0
    while at < end:
        run_id = f"scheduled__{at.isoformat()}"
        lineage = Lineage(str(record["version"]), str(record["commit"]), run_id)
        write_sample_predictions(model, n, at, lineage, prediction_path(at), dict(args.shift))
        written += 1
        at += timedelta(minutes=args.every)
    shifted = ", ".join(f"{f} {v:+g} cm" for f, v in args.shift) or "no shift"
    print(f"served_day: {written} runs of {day} (KST) written by {record['version']} ({shifted})")


if __name__ == "__main__":
    main()
