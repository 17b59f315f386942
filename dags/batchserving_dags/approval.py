"""``model_selection``'s approval step: a person approves or rejects a promote verdict.

With ``selection.approval: required`` a promote verdict of the gate branches to
``approve_promotion``, Airflow's human-in-the-loop branch operator: its page (the run's
*Required Actions*, or ``/api/v2/hitlDetails``) shows the comparison and its evidence,
and offers *Approve* (→ ``promote``) and *Reject* (→ ``keep_champion``). No answer within
``selection.approval_timeout_minutes`` is the default, *Reject*: the champion stays.
The wait holds no worker slot and no pool slot (Airflow 3.3's ``awaiting_input``).

Its XCom ``decision`` is the record ``promote`` and ``keep_champion`` read: approved or
not, by whom (the responding user; ``None`` on a time-out), when.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator

from batchserving_dags.branch import COMPARE_TASK, DECISION_KEY, KEEP_TASK, PROMOTE_TASK

APPROVE = "Approve"
REJECT = "Reject"
# The comparison is a few KB; the page shows it whole up to this size.
MAX_BODY_JSON_CHARS = 20_000
# The longest wait selection.approval_timeout_minutes allows (batchserving.core.params).
MAX_WAIT = timedelta(minutes=1200)


def approval_body(comparison: dict[str, Any]) -> str:
    """The page a person decides on: the verdict, metrics, evidence, rule, and the JSON."""
    from batchserving.selection.rule import evidence_line

    metric = comparison["rule"]["primary_metric"]
    challenger, champion = comparison["challenger"], comparison["champion"]
    old = champion["metrics"][metric] if champion else "none (first prod version)"
    deltas = ", ".join(f"{k} {v:+.6f}" for k, v in comparison.get("deltas", {}).items())
    shown = json.dumps(comparison, indent=2, sort_keys=True)
    if len(shown) > MAX_BODY_JSON_CHARS:
        shown = shown[:MAX_BODY_JSON_CHARS] + "\n… (cut; the compare task's XCom has it whole)"
    return "\n".join(
        [
            f"The gate says **promote** `{comparison['artifact']}` **{challenger['version']}** "
            f"(commit `{challenger['commit'][:12]}`) to `prod`, replacing "
            f"**{champion['version'] if champion else 'nothing'}**.",
            "",
            f"- {metric}: {old} → {challenger['metrics'][metric]}",
            f"- deltas: {deltas or 'none'}",
            f"- evidence: {evidence_line(comparison.get('evidence'))}",
            f"- why: {comparison['reason']}",
            f"- rule: {comparison['rule']['statement']}",
            "",
            "**Approve** promotes it; **Reject**, or no answer within "
            f"{comparison['rule']['approval_timeout_minutes']:g} minutes, keeps the champion.",
            "",
            "```json",
            shown,
            "```",
        ]
    )


def approval_wait(comparison: dict[str, Any]) -> timedelta:
    """How long to wait for an answer: the rule's ``approval_timeout_minutes``, checked."""
    from batchserving.selection.rule import SelectionError

    minutes = comparison["rule"].get("approval_timeout_minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int | float):
        raise SelectionError(
            "the comparison has no approval_timeout_minutes; run model_selection again"
        )
    wait = timedelta(minutes=minutes)
    if not timedelta(0) < wait <= MAX_WAIT:
        raise SelectionError(
            f"approval_timeout_minutes {str(minutes)[:20]} is outside (0, "
            f"{MAX_WAIT.total_seconds() / 60:g}]; fix params.yaml and run model_selection again"
        )
    return wait


def decision_record(event: dict[str, Any]) -> dict[str, Any]:
    """Who decided what, from the HITL response Airflow resumed the task with."""
    user = event.get("responded_by_user") or {}
    responded_at = event.get("responded_at")
    return {
        "approved": list(event.get("chosen_options") or []) == [APPROVE],
        "by": str(user["name"])[:100] if user.get("name") else None,
        "timed_out": bool(event.get("timedout")),
        "at": responded_at.isoformat() if hasattr(responded_at, "isoformat") else None,
    }


class PromotionApproval(HITLBranchOperator):
    """Ask a person to approve the promotion the gate decided; Reject on a time-out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            subject="Promote the challenger to prod?",
            options=[APPROVE, REJECT],
            defaults=[REJECT],
            options_mapping={APPROVE: PROMOTE_TASK, REJECT: KEEP_TASK},
            # Replaced at run time by the comparison's approval_timeout_minutes.
            response_timeout=MAX_WAIT,
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        from batchserving.selection.rule import read_comparison

        comparison = read_comparison(context["ti"].xcom_pull(task_ids=COMPARE_TASK))
        self.subject = (
            f"Promote {comparison['artifact']} {comparison['challenger']['version']} to prod?"
        )
        self.body = approval_body(comparison)
        self.response_timeout = approval_wait(comparison)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        # First: the branch ends this method by raising (Airflow skips the other task then).
        record = decision_record(event)
        self.log.info("Approval: %s", json.dumps(record, sort_keys=True))
        context["ti"].xcom_push(key=DECISION_KEY, value=record)
        return super().execute_complete(context, event)
