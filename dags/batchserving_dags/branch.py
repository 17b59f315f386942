"""What ``model_selection``'s branch and keep message decide, from the comparison alone.

The compare task's result is the comparison (its XCom); ``choose_branch``, ``promote``
and ``keep_champion`` read it when they run, on whichever worker. No dvc, gto or sklearn.
With ``selection.approval: required`` (the comparison's ``rule.approval``) a promote
verdict goes to ``approve_promotion`` first (``batchserving_dags.approval``), whose
decision record (its XCom) the promote and keep messages name.
"""

from __future__ import annotations

from typing import Any

COMPARE_TASK = "compare"
PROMOTE_TASK = "promote"
KEEP_TASK = "keep_champion"
APPROVAL_TASK = "approve_promotion"
# The promote task gets the comparison in its environment (JSON in one variable).
COMPARISON_TEMPLATE = "{{ ti.xcom_pull(task_ids='compare') }}"
# The approval step's decision record (its XCom of this key), JSON; "null": it did not run.
DECISION_KEY = "decision"
APPROVAL_TEMPLATE = "{{ ti.xcom_pull(task_ids='approve_promotion', key='decision') | tojson }}"
# "redeploy": prod is right but output/serving is not; the promote task deploys it.
PROMOTE_DECISIONS = ("promote", "redeploy")


def branch_for(ti: Any) -> str:
    """The task the branch follows, from the comparison: ``promote``, ``keep_champion``,
    or ``approve_promotion`` for a promote verdict that needs a person's approval
    (a redeploy of the prod version already approved never asks)."""
    from batchserving.selection.rule import PROMOTE, read_comparison

    comparison = read_comparison(ti.xcom_pull(task_ids=COMPARE_TASK))
    decision = comparison["decision"]
    print(f"decision: {decision} ({comparison.get('reason')})")
    if decision == PROMOTE and comparison["rule"].get("approval") == "required":
        return APPROVAL_TASK
    return PROMOTE_TASK if decision in PROMOTE_DECISIONS else KEEP_TASK


def keep_message(ti: Any) -> dict[str, str]:
    """The result of ``keep_champion``: its Slack text, who stays in prod and why."""
    from batchserving.selection.rule import approval_line, read_approval, read_comparison

    comparison = read_comparison(ti.xcom_pull(task_ids=COMPARE_TASK))
    approval = read_approval(ti.xcom_pull(task_ids=APPROVAL_TASK, key=DECISION_KEY))
    if approval is not None:
        return {"message": not_approved_text(comparison, approval_line(approval))}
    return {"message": keep_text(comparison)}


def not_approved_text(comparison: dict[str, Any], decided: str) -> str:
    """The gate said promote, but the person asked rejected it or did not answer."""
    from batchserving.selection.rule import evidence_line

    artifact, champion = comparison["artifact"], comparison["champion"]
    stays = "nothing promoted"
    if champion is not None:
        stays = f"kept champion {artifact} {champion['version']} in prod"
    return (
        f":shield: model_selection: {stays}; challenger {comparison['challenger']['version']} "
        f"was not approved.{decided} The gate's verdict was promote: {comparison['reason']}. "
        f"{evidence_line(comparison.get('evidence'))}"
    )


def keep_text(comparison: dict[str, Any]) -> str:
    """Who stays in prod and why, with the deltas and the evidence."""
    from batchserving.selection.rule import evidence_line

    metric = comparison["rule"]["primary_metric"]
    champion, challenger = comparison["champion"], comparison["challenger"]
    if champion is None:
        # The floor blocked the first version: nothing is in prod and nothing is deployed.
        return (
            f":no_entry: model_selection: nothing promoted; {comparison['artifact']} "
            f"{challenger['version']} {metric} {challenger['metrics'][metric]} stays out of "
            f"prod. Why: {comparison['reason']}"
        )
    deltas = ", ".join(f"{k} {v:+.6f}" for k, v in comparison["deltas"].items())
    return (
        f":shield: model_selection: kept champion {comparison['artifact']} "
        f"{champion['version']} in prod; challenger {challenger['version']} {metric} "
        f"{challenger['metrics'][metric]} vs {champion['metrics'][metric]}. "
        f"Why: {comparison['reason']}. Deltas: {deltas or 'none'}. "
        f"{evidence_line(comparison.get('evidence'))}"
    )
