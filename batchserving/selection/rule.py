"""The champion/challenger rule and the metrics it reads: pure functions, no git or DVC."""

from __future__ import annotations

import json
import math
from typing import Any

PROMOTE, KEEP, REDEPLOY = "promote", "keep", "redeploy"


class SelectionError(RuntimeError):
    """The comparison cannot be made or acted on (bad metrics, prod moved, bad decision)."""


def decide(challenger: float, champion: float | None, min_improvement: float) -> tuple[str, str]:
    """Promote iff there is no champion or challenger - champion > min_improvement.

    A tie keeps the champion. Returns the decision (``promote``/``keep``) and why.
    """
    if champion is None:
        return PROMOTE, "no prod version yet (bootstrap)"
    delta = challenger - champion
    if delta > min_improvement:
        return PROMOTE, f"challenger beats champion by {delta:+.6f} > {min_improvement}"
    return KEEP, f"challenger - champion = {delta:+.6f}, not > {min_improvement}"


def parse_metrics(text: str | None, source: str, metric: str) -> dict[str, Any]:
    """The metrics in ``text`` (a metrics.json), checked to hold a finite ``metric``."""
    if text is None:
        raise SelectionError(f"{source} is missing; run `dvc repro evaluate` to write it")
    if not text.strip():
        raise SelectionError(f"{source} is empty; run `dvc repro evaluate` to rewrite it")
    try:
        metrics = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SelectionError(
            f"{source} is not valid JSON ({exc}); run `dvc repro evaluate` to rewrite it"
        ) from None
    if not isinstance(metrics, dict):
        raise SelectionError(f"{source} is not a JSON object of metrics")
    if metric not in metrics:
        raise SelectionError(
            f"{source} has no '{metric}' (the primary metric, params.yaml selection."
            f"primary_metric); it has: {', '.join(sorted(metrics)) or 'nothing'}"
        )
    value = metrics[metric]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SelectionError(f"{source}: '{metric}' = {value!r} is not a finite number")
    return metrics


def metric_deltas(challenger: dict[str, Any], champion: dict[str, Any]) -> dict[str, float]:
    """challenger - champion for every top-level score both have (not counts like n_test)."""

    def is_score(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    return {
        key: round(challenger[key] - champion[key], 6)
        for key in sorted(challenger)
        if key in champion
        and not key.startswith("n_")
        and is_score(challenger[key])
        and is_score(champion[key])
    }
