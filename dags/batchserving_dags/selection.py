"""What ``model_selection``'s branch and keep message decide, from the comparison alone.

The compare task (``python -m batchserving.selection.compare``) prints the comparison as
its last output line, its XCom; ``choose_branch`` and ``keep_champion`` (their callables
are declared in the package) read it here when they run, on whichever worker. No dvc,
gto or sklearn. Imported only when those tasks run.
"""

from __future__ import annotations

from typing import Any

from batchserving.selection.rule import evidence_line, read_comparison
from batchserving_dags import COMPARE_TASK, KEEP_TASK, PROMOTE_TASK

# "redeploy": prod is right but output/serving is not; the promote task deploys it.
PROMOTE_DECISIONS = ("promote", "redeploy")


def branch_for(ti: Any) -> str:
    """The task the branch follows: ``promote`` or ``keep_champion``, from the comparison."""
    comparison = read_comparison(ti.xcom_pull(task_ids=COMPARE_TASK))
    decision = comparison["decision"]
    print(f"decision: {decision} ({comparison.get('reason')})")
    return PROMOTE_TASK if decision in PROMOTE_DECISIONS else KEEP_TASK


def keep_message(ti: Any) -> str:
    """The Slack text of ``keep_champion``: who stays in prod and why, with the evidence."""
    comparison = read_comparison(ti.xcom_pull(task_ids=COMPARE_TASK))
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
