"""The approval step's decisions, page and messages (dags/batchserving_dags/approval.py).

The branch and the messages read XComs through ``ti.xcom_pull``; ``XComs`` below hands
them the values a run would hold. The real operator under a real scheduler and API
server is tests/e2e/test_promotion_approval.py.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from batchserving import DAGS_FOLDER
from batchserving.core.params import RegistryParams
from batchserving.selection.promote import promote
from batchserving.selection.rule import SelectionError, approval_line, read_approval

# The helpers import each other as the DAG processor loads them: from the dags folder.
if str(DAGS_FOLDER) not in sys.path:
    sys.path.insert(0, str(DAGS_FOLDER))
from batchserving_dags.approval import (  # noqa: E402
    MAX_BODY_JSON_CHARS,
    approval_body,
    approval_wait,
    decision_record,
)
from batchserving_dags.branch import branch_for, keep_message  # noqa: E402

EVIDENCE = {
    "test": "mcnemar",
    "alpha": 0.05,
    "n": 45,
    "metric": "f1_macro",
    "p_value": 0.03125,
    "challenger_only": 6,
    "champion_only": 0,
    "delta_ci": {"confidence": 0.95, "low": 0.05, "high": 0.2},
}


def comparison(decision: str = "promote", approval: str = "required", minutes=30) -> dict:
    """A comparison as compare emits it, with the fields the approval step reads."""
    return {
        "artifact": "iris-model",
        "decision": decision,
        "reason": "f1_macro +0.120000 > 0.0 and McNemar exact p = 0.03125 < alpha 0.05",
        "rule": {
            "primary_metric": "f1_macro",
            "statement": "promote iff ...",
            "approval": approval,
            "approval_timeout_minutes": minutes,
        },
        "challenger": {"version": "v0.0.2", "commit": "c" * 40, "metrics": {"f1_macro": 0.95}},
        "champion": {"version": "v0.0.1", "commit": "a" * 40, "metrics": {"f1_macro": 0.83}},
        "deltas": {"f1_macro": 0.12},
        "evidence": EVIDENCE,
    }


class XComs:
    """The ``ti`` a task's callable gets, reduced to the XComs of one run."""

    def __init__(self, **values) -> None:
        self.values = values

    def xcom_pull(self, task_ids: str, key: str = "return_value"):
        return self.values.get(task_ids if key == "return_value" else f"{task_ids}.{key}")


@pytest.mark.parametrize(
    ("decision", "approval", "branch"),
    [
        ("promote", "required", "approve_promotion"),
        ("promote", "none", "promote"),  # today's flow
        ("keep", "required", "keep_champion"),  # only a promote verdict asks
        ("redeploy", "required", "promote"),  # prod was approved already: no question
        ("keep", "none", "keep_champion"),
    ],
)
def test_only_a_promote_verdict_with_approval_required_asks(decision, approval, branch) -> None:
    ti = XComs(compare=json.dumps(comparison(decision, approval)))
    assert branch_for(ti) == branch


def test_a_comparison_without_the_approval_key_is_todays_flow() -> None:
    old = comparison()
    del old["rule"]["approval"]
    assert branch_for(XComs(compare=json.dumps(old))) == "promote"


def test_the_wait_is_the_params_time_out_and_is_bounded() -> None:
    assert approval_wait(comparison(minutes=0.1)) == timedelta(seconds=6)
    assert approval_wait(comparison(minutes=1200)) == timedelta(hours=20)
    for bad in (0, -1, 1201, True, "30", None):
        with pytest.raises(SelectionError, match="approval_timeout_minutes"):
            approval_wait(comparison(minutes=bad))


def test_the_page_shows_the_verdict_the_evidence_and_the_comparison() -> None:
    body = approval_body(comparison())
    assert "**v0.0.2**" in body and "**v0.0.1**" in body
    assert "f1_macro: 0.83 → 0.95" in body
    assert "McNemar p = 0.03125 (6 challenger-only vs 0 champion-only rows)" in body
    assert "30 minutes" in body
    assert json.dumps(comparison(), indent=2, sort_keys=True) in body


def test_the_page_is_bounded_however_large_the_comparison() -> None:
    huge = comparison()
    huge["evidence"] = {**EVIDENCE, "outcomes": {"challenger": "1" * 10**6}}
    body = approval_body(huge)
    assert len(body) < MAX_BODY_JSON_CHARS + 2_000
    assert "cut; the compare task's XCom has it whole" in body


def test_the_decision_record_names_who_decided_or_the_time_out() -> None:
    at = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    approved = decision_record(
        {
            "chosen_options": ["Approve"],
            "responded_by_user": {"id": "admin", "name": "admin"},
            "responded_at": at,
            "timedout": False,
        }
    )
    assert approved == {"approved": True, "by": "admin", "timed_out": False, "at": at.isoformat()}
    timed_out = decision_record(
        {
            "chosen_options": ["Reject"],
            "responded_by_user": None,
            "responded_at": at,
            "timedout": True,
        }
    )
    assert (timed_out["approved"], timed_out["by"], timed_out["timed_out"]) == (False, None, True)
    assert approval_line(approved) == " Approved by admin."
    assert approval_line(timed_out) == " No one approved it in time: the champion stays."
    assert approval_line({**timed_out, "timed_out": False, "by": "ops"}) == " Rejected by ops."
    assert approval_line(None) == ""


def test_keep_after_a_rejection_says_who_rejected_and_what_the_gate_said() -> None:
    rejected = {"approved": False, "by": "ops-lead", "timed_out": False, "at": "2026-03-01"}
    ti = XComs(compare=json.dumps(comparison()), **{"approve_promotion.decision": rejected})
    message = keep_message(ti)["message"]
    assert "kept champion iris-model v0.0.1 in prod" in message
    assert "challenger v0.0.2 was not approved. Rejected by ops-lead." in message
    assert "The gate's verdict was promote" in message


def test_keep_without_the_approval_step_is_unchanged() -> None:
    keep = comparison("keep", "none")
    ti = XComs(compare=json.dumps(keep))
    message = keep_message(ti)["message"]
    assert message.startswith(":shield: model_selection: kept champion iris-model v0.0.1 in prod")
    assert "approved" not in message


@pytest.mark.parametrize("value", [None, "None", "null", ""])
def test_no_approval_step_reads_as_none(value) -> None:
    assert read_approval(value) is None


@pytest.mark.parametrize(
    "value", ['{"by": "x"}', '{"approved": "yes"}', '{"approved": true, "by": "' + "x" * 200 + '"}']
)
def test_a_bad_decision_record_is_refused(value) -> None:
    with pytest.raises(SelectionError, match="approval step"):
        read_approval(value)


def test_promote_refuses_a_rejected_approval_before_touching_the_repo(tmp_path: Path) -> None:
    """A record that says not approved stops the command first: no tag, no deployment."""
    identity = RegistryParams.from_mapping({"git_name": "Bot", "git_email": "bot@example.invalid"})
    rejected = {"approved": False, "by": "ops-lead", "timed_out": False}
    with pytest.raises(SelectionError, match="not approved; nothing is promoted"):
        promote(tmp_path / "no-repo", comparison(), identity, rejected)
    assert not (tmp_path / "no-repo").exists()


def test_promote_refuses_a_required_approval_that_no_one_gave(tmp_path: Path) -> None:
    """approval: required and no decision record (the step bypassed): nothing is promoted."""
    identity = RegistryParams.from_mapping({"git_name": "Bot", "git_email": "bot@example.invalid"})
    with pytest.raises(SelectionError, match="no one approved this promotion"):
        promote(tmp_path / "no-repo", comparison(), identity, None)
    assert not (tmp_path / "no-repo").exists()
