"""The champion/challenger rule and the metrics it reads: pure functions, no git or DVC.

Promote iff the challenger clears the floor (``min_score``) and either there is no
champion, or challenger − champion > ``min_improvement`` on the primary metric *and*
the chosen test finds the gain significant at ``alpha`` on the same test rows:

- ``mcnemar``: the exact McNemar p-value < alpha;
- ``bootstrap``: the lower bound of the paired bootstrap interval (level 1 − alpha) of
  the delta > min_improvement;
- ``none``: the point estimates alone (the gain is enough).

A tie or a non-significant gain keeps the champion; identical predictions never promote.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchserving.core.params import SelectionParams
    from batchserving.selection.evidence import Evidence

PROMOTE, KEEP, REDEPLOY = "promote", "keep", "redeploy"


class SelectionError(RuntimeError):
    """The comparison cannot be made or acted on (bad metrics, prod moved, bad decision)."""


def significance(evidence: Evidence, min_improvement: float) -> tuple[bool, str]:
    """Whether ``evidence.test`` finds the challenger's gain significant, and why."""
    if evidence.test == "none":
        return True, "test none: the point estimates decide"
    if evidence.test == "mcnemar":
        verdict = "<" if evidence.p_value < evidence.alpha else ">="
        return evidence.p_value < evidence.alpha, (
            f"McNemar exact p = {evidence.p_value:.4g} {verdict} alpha {evidence.alpha} "
            f"({evidence.challenger_only} rows only the challenger gets right, "
            f"{evidence.champion_only} only the champion, of {evidence.n})"
        )
    low, high = evidence.delta_ci
    verdict = ">" if low > min_improvement else "<="
    return low > min_improvement, (
        f"bootstrap {1 - evidence.alpha:.0%} interval of the delta [{low:+.4f}, {high:+.4f}]: "
        f"lower bound {verdict} min_improvement {min_improvement}"
    )


def decide(
    challenger: float,
    champion: float | None,
    params: SelectionParams,
    evidence: Evidence | None = None,
) -> tuple[str, str]:
    """The decision (``promote``/``keep``) by the rule of the module docstring, and why.

    ``evidence`` (both models on the same rows) is required when there is a champion.
    """
    metric = params.primary_metric
    if challenger < params.min_score:
        return KEEP, (
            f"the floor blocked it: challenger {metric} {challenger} is below min_score "
            f"{params.min_score}"
        )
    if champion is None:
        return PROMOTE, (
            f"no prod version yet (bootstrap); {metric} {challenger} clears the floor "
            f"min_score {params.min_score}"
        )
    delta = challenger - champion
    if delta <= params.min_improvement:
        return KEEP, f"challenger - champion = {delta:+.6f}, not > {params.min_improvement}"
    if evidence is None:
        raise SelectionError("the rule needs the paired evidence of both models; none was given")
    significant, why = significance(evidence, params.min_improvement)
    if not significant:
        return KEEP, f"gain {delta:+.6f} is not significant: {why}"
    return PROMOTE, f"challenger beats champion by {delta:+.6f} > {params.min_improvement}; {why}"


def evidence_line(evidence: dict[str, Any] | None) -> str:
    """The evidence of a comparison JSON in one line (p-value and interval), for Slack."""
    if evidence is None:
        return "evidence: none (no champion to compare with)"
    ci = evidence["delta_ci"]
    return (
        f"evidence ({evidence['test']}, alpha {evidence['alpha']}, n {evidence['n']}): "
        f"McNemar p = {evidence['p_value']:.4g} ({evidence['challenger_only']} challenger-only vs "
        f"{evidence['champion_only']} champion-only rows), {ci['confidence']:.0%} interval of "
        f"the {evidence['metric']} delta [{ci['low']:+.4f}, {ci['high']:+.4f}]"
    )


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


def read_comparison(value: Any) -> dict[str, Any]:
    """The comparison the compare step returned (its XCom), with a decision this rule knows."""
    from batchserving.core.results import ResultError, read_result

    try:
        comparison = read_result(value, "the compare step")
    except ResultError as exc:
        raise SelectionError(str(exc)) from None
    if comparison.get("decision") not in (PROMOTE, KEEP, REDEPLOY):
        raise SelectionError(
            f"unknown decision {str(comparison.get('decision'))[:40]!r} in the comparison; "
            "run the whole model_selection DAG again"
        )
    return comparison


def read_approval(value: Any) -> dict[str, Any] | None:
    """The approval step's decision record (its XCom), or None when no one was asked.

    ``None``/``"None"``/``"null"`` is a run without the step (``approval: none``, or a
    keep verdict); anything else must be the record ``approve_promotion`` returns.
    """
    from batchserving.core.results import ResultError, read_result

    if value is None or value in ("", "None", "null"):
        return None
    try:
        record = read_result(value, "the approval step")
    except ResultError as exc:
        raise SelectionError(str(exc)) from None
    by = record.get("by")
    if not isinstance(record.get("approved"), bool) or not (
        by is None or (isinstance(by, str) and len(by) <= 100)
    ):
        raise SelectionError(
            "the approval step returned no decision record; run model_selection again"
        )
    return record


def approval_line(record: dict[str, Any] | None) -> str:
    """Who decided, in one line for Slack: the approver, the rejecter, or the time-out."""
    if record is None:
        return ""
    if record["approved"]:
        return f" Approved by {record['by'] or 'an unknown user'}."
    if record.get("timed_out"):
        return " No one approved it in time: the champion stays."
    return f" Rejected by {record['by'] or 'an unknown user'}."
