"""
### Champion/challenger gate: `model_selection`

Every day at 00:30 Asia/Seoul: compare the latest version (challenger) with `prod`
(champion) on the same test rows, and promote only a significant gain.

1. `repro_evaluate` → `register_model`: as in `simple_train`.
2. `compare`: both models on the current test rows; the rule is `params.yaml` `selection`.
3. `choose_branch` → `promote` (`gto assign --stage prod`, deploy, Slack with the
   deltas) or `keep_champion` (Slack with why) → `join`; with `selection.approval:
   required` a promote verdict first waits at `approve_promotion` (Approve → `promote`).

Rollback: `make rollback VERSION=vX.Y.Z`. The rule and its evidence: docs/selection.md.
"""

from __future__ import annotations

from datetime import timedelta

# The helpers' operators subclass Airflow's bash and HITL branch operators; naming their
# modules here makes the DAG processor pre-import them once instead of at every parse
# (this DAG, the richest, would parse at over 2x the one-operator DAG: docs/performance.md).
import airflow.providers.standard.operators.bash  # noqa: F401
import airflow.providers.standard.operators.hitl  # noqa: F401
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.sdk import DAG, Label, TriggerRule
from batchserving_dags.alerts import failure_alert, summary_alert
from batchserving_dags.approval import PromotionApproval
from batchserving_dags.assets import MODEL_VERSIONS, PROD_DEPLOYMENT, prod_event
from batchserving_dags.branch import (
    APPROVAL_TASK,
    APPROVAL_TEMPLATE,
    COMPARE_TASK,
    COMPARISON_TEMPLATE,
    KEEP_TASK,
    PROMOTE_TASK,
    branch_for,
    keep_message,
)
from batchserving_dags.deadlines import model_selection_deadline
from batchserving_dags.operators import repo_task, update_and_register

SCHEDULE = "30 0 * * *"

with DAG(
    dag_id="model_selection",
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_runs=1,
    tags=["selection", "dvc", "gto"],
    doc_md=__doc__,
    # Every task with its retries fits in 3 h, plus the longest approval wait params.yaml
    # allows (selection.approval_timeout_minutes <= 1200); a run still going has hung.
    dagrun_timeout=timedelta(hours=23),
    # Slack once when a run is not done by 02:00 KST (batchserving_dags.deadlines).
    deadline=model_selection_deadline(SCHEDULE),
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "on_failure_callback": [failure_alert],
    },
) as dag:
    repro_evaluate, register_model = update_and_register()
    compare = repo_task(
        COMPARE_TASK,
        "batchserving.selection.compare",
        execution_timeout=timedelta(minutes=10),
        inlets=[MODEL_VERSIONS, PROD_DEPLOYMENT],
    )
    choose_branch = BranchPythonOperator(
        task_id="choose_branch",
        python_callable=branch_for,
        execution_timeout=timedelta(minutes=1),
    )
    # Asked only when the gate says promote and selection.approval is required; the wait
    # (awaiting_input) holds no worker or pool slot. The time-out comes from params.yaml.
    approve_promotion = PromotionApproval(
        task_id=APPROVAL_TASK,
        execution_timeout=timedelta(minutes=1),
    )
    # The message of the promote task's result (its XCom) goes to Slack. The two run
    # after the branch or after the approval, whichever ran (the other is skipped).
    promote = repo_task(
        PROMOTE_TASK,
        "batchserving.selection.promote promote "
        '--comparison-json "$COMPARISON_JSON" --approval-json "$APPROVAL_JSON"',
        env={"COMPARISON_JSON": COMPARISON_TEMPLATE, "APPROVAL_JSON": APPROVAL_TEMPLATE},
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        on_success_callback=[summary_alert(PROMOTE_TASK)],
        execution_timeout=timedelta(minutes=15),
        outlets=[PROD_DEPLOYMENT],
        post_execute=prod_event,
    )
    keep_champion = PythonOperator(
        task_id=KEEP_TASK,
        python_callable=keep_message,
        on_success_callback=[summary_alert(KEEP_TASK)],
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        execution_timeout=timedelta(minutes=1),
    )
    join = EmptyOperator(
        task_id="join",
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        execution_timeout=timedelta(minutes=1),
    )

    register_model >> compare >> choose_branch
    choose_branch >> Label("challenger wins: promote") >> promote >> join
    choose_branch >> Label("champion stays: keep") >> keep_champion >> join
    choose_branch >> Label("challenger wins: ask for approval") >> approve_promotion
    approve_promotion >> Label("approved: promote") >> promote
    approve_promotion >> Label("rejected or no answer: keep") >> keep_champion
