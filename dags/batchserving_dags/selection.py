"""Callables of ``model_selection`` that only read the comparison JSON (no dvc, gto or sklearn).

The compare task (``python -m batchserving.selection.compare``) writes
``$MODEL_REPO/output/selection/comparison.json``; the branch and the keep message read it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from batchserving_dags.model_repo import PROJECT_ROOT
from batchserving_dags.slack_notifier import SlackAlert

COMPARISON_PATH = "output/selection/comparison.json"
PROMOTE_TASK = "promote"
KEEP_TASK = "keep_champion"
# "redeploy": prod is right but output/serving is not; the promote task deploys it.
PROMOTE_DECISIONS = ("promote", "redeploy")


def read_comparison(run_id: str | None = None) -> dict[str, Any]:
    """The comparison written by this run's compare task (checked by its run label)."""
    path = Path(os.environ.get("MODEL_REPO") or PROJECT_ROOT) / COMPARISON_PATH
    try:
        comparison = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise RuntimeError(f"{path} is missing or unreadable ({exc}); run compare first") from None
    if run_id is not None and not str(comparison.get("run", "")).endswith(f" run {run_id}"):
        raise RuntimeError(
            f"{path} was written by {comparison.get('run')!r}, not by run {run_id}; "
            "run the whole DAG again"
        )
    return comparison


def choose_branch(run_id: str) -> str:
    """BranchPythonOperator callable: ``promote`` or ``keep_champion``, from the comparison."""
    comparison = read_comparison(run_id)
    decision = comparison.get("decision")
    if decision not in (*PROMOTE_DECISIONS, "keep"):
        raise RuntimeError(f"unknown decision {decision!r} in the comparison")
    print(f"decision: {decision} ({comparison.get('reason')})")
    return PROMOTE_TASK if decision in PROMOTE_DECISIONS else KEEP_TASK


def keep_message(run_id: str) -> str:
    """The Slack text of ``keep_champion``: who stays in prod and why, with the deltas."""
    comparison = read_comparison(run_id)
    metric = comparison["rule"]["primary_metric"]
    champion, challenger = comparison["champion"], comparison["challenger"]
    deltas = ", ".join(f"{k} {v:+.6f}" for k, v in comparison["deltas"].items())
    return (
        f":shield: model_selection: kept champion {comparison['artifact']} "
        f"{champion['version']} in prod; challenger {challenger['version']} {metric} "
        f"{challenger['metrics'][metric]} vs {champion['metrics'][metric]}. "
        f"Why: {comparison['reason']}. Deltas: {deltas or 'none'}"
    )


def summary_alert(task_id: str) -> SlackAlert:
    """Success alert whose text is the task's return value (its XCom): one line, no secrets."""
    return SlackAlert(f"{{{{ ti.xcom_pull(task_ids='{task_id}') }}}}")
