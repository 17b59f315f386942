"""``batch_inference`` through Airflow's ``dag.test()`` on a temporary model repo."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run
from tests.integration.dagrun import run_dag, task_states

pytestmark = pytest.mark.usefixtures("airflow_db")

LOGICAL_DATE = datetime(2026, 3, 1, 9, 25, tzinfo=UTC)
PREDICTIONS = "output/predictions/2026-03-01/2026-03-01T09-25-00Z.csv"


def test_an_asset_triggered_run_seeds_from_run_after_into_a_file_of_its_own(
    promoted_repo: Path,
) -> None:
    """A run an iris-model-prod event started has no logical date (Airflow 3): it scores
    the sample of its run_after, into a file of its own even in a scheduled run's second.

    (``dag.test()`` gives each such run a new id, so a second one scores the same rows
    into the same file under its own id; a re-run of one run, same id, same bytes, is
    cleared under the real scheduler in tests/e2e/test_promotion_approval.py.)
    """
    run_dag("batch_inference", LOGICAL_DATE, run_after=LOGICAL_DATE)
    scheduled_file = promoted_repo / PREDICTIONS
    scheduled_bytes = scheduled_file.read_bytes()
    queued_at = LOGICAL_DATE + timedelta(microseconds=412_000)  # the event, 0.412 s later

    def scored(dagrun) -> list[dict]:
        assert dagrun.logical_date is None and task_states(dagrun) == {"predict": "success"}
        with open(own, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert {row.pop("run_id") for row in rows} == {dagrun.run_id}
        return rows

    own = promoted_repo / "output/predictions/2026-03-01/2026-03-01T09-25-00.412000Z.csv"
    first = scored(run_dag("batch_inference", None, run_after=queued_at))
    assert scheduled_file.read_bytes() == scheduled_bytes  # the scheduled run's file is intact
    assert scored(run_dag("batch_inference", None, run_after=queued_at)) == first


def test_nothing_deployed_skips_without_alert(
    model_repo: Path, slack_receiver, capfd: pytest.CaptureFixture
) -> None:
    dagrun = run_dag("batch_inference", LOGICAL_DATE, run_after=LOGICAL_DATE)

    assert task_states(dagrun) == {"predict": "skipped"}
    out = capfd.readouterr()
    assert "run the model_selection DAG first" in out.out + out.err
    assert not (model_repo / "output/predictions").exists()
    assert slack_receiver.texts == []


def test_predictions_carry_the_deployment_lineage_and_rerun_is_identical(
    promoted_repo: Path, slack_receiver
) -> None:
    # A real model from the real pipeline, registered, promoted and deployed.
    model_repo = promoted_repo
    commit = run(["git", "rev-list", "-n1", "iris-model@v0.0.1"], cwd=model_repo).stdout.strip()
    record = json.loads((model_repo / "output/serving/model.json").read_text())

    first = run_dag("batch_inference", LOGICAL_DATE, run_after=LOGICAL_DATE)
    assert task_states(first) == {"predict": "success"}
    path = model_repo / PREDICTIONS
    content = path.read_bytes()
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5  # inference.n_samples
    for row in rows:
        assert row["model_version"] == record["version"] == "v0.0.1"
        assert row["model_commit"] == record["commit"] == commit
        assert row["run_id"] == first.run_id
        assert row["predicted_class"] in {"setosa", "versicolor", "virginica"}
        assert 0.0 < float(row["probability"]) <= 1.0

    # The same run again (same logical date, same run id): the same rows, the same bytes.
    second = run_dag("batch_inference", LOGICAL_DATE, run_after=LOGICAL_DATE)
    assert task_states(second) == {"predict": "success"}
    assert second.run_id == first.run_id
    assert path.read_bytes() == content

    # Large-batch mode through run conf: a file in the repo, streamed, same lineage.
    (model_repo / "batch.csv").write_text(
        "id,sepal_length,sepal_width,petal_length,petal_width\n"
        "a,5.1,3.5,1.4,0.2\nb,6.7,3.0,5.2,2.3\nc,5.9,3.0,4.2,1.5\n"
    )
    conf = {"input_path": "batch.csv", "output_path": "output/predictions/batch/scored.parquet"}
    later = LOGICAL_DATE + timedelta(minutes=5)
    batch = run_dag("batch_inference", later, run_after=later, run_conf=conf)
    assert task_states(batch) == {"predict": "success"}
    scored = pd.read_parquet(model_repo / "output/predictions/batch/scored.parquet")
    assert scored["id"].tolist() == ["a", "b", "c"]
    assert scored["predicted_class"].tolist()[0] == "setosa"
    assert set(scored["model_commit"]) == {commit}
    assert set(scored["run_id"]) == {batch.run_id}
    assert slack_receiver.texts == []


def test_a_serving_cache_unlike_the_pin_is_refetched(promoted_repo: Path) -> None:
    # The serving cache holds a file under prod's record that is not prod's pinned model
    # (its record rewritten to match it): the run fetches the pinned model and serves it.
    model_repo = promoted_repo
    serving = model_repo / "output/serving"
    record = json.loads((serving / "model.json").read_text())
    garbage = b"this is not a pickle"
    md5 = hashlib.md5(garbage, usedforsecurity=False).hexdigest()
    (serving / f"model-{md5}.joblib").write_bytes(garbage)
    (serving / "model.json").write_text(json.dumps({**record, "model_md5": md5}))

    dagrun = run_dag("batch_inference", LOGICAL_DATE, run_after=LOGICAL_DATE)

    assert task_states(dagrun) == {"predict": "success"}
    assert json.loads((serving / "model.json").read_text()) == record
    assert '"v0.0.1"' in (model_repo / PREDICTIONS).read_text()


def test_a_model_unlike_its_pin_fails_with_a_clear_message_and_an_alert(
    promoted_repo: Path, slack_receiver, capfd: pytest.CaptureFixture
) -> None:
    # Prod's object replaced everywhere it could be fetched from, and the serving cache
    # gone: nothing verified is left to serve.
    model_repo = promoted_repo
    md5 = json.loads((model_repo / "output/serving/model.json").read_text())["model_md5"]
    for store in (model_repo / ".dvc/cache", model_repo / "dvc-remote"):
        target = store / "files" / "md5" / md5[:2] / md5[2:]
        target.chmod(0o600)
        target.write_bytes(b"this is not a pickle")
    shutil.rmtree(model_repo / "output/serving")

    dagrun = run_dag("batch_inference", LOGICAL_DATE, run_after=LOGICAL_DATE)

    assert task_states(dagrun) == {"predict": "failed"}
    out = capfd.readouterr()
    assert f"pins {md5}" in out.out + out.err
    assert not (model_repo / PREDICTIONS).exists()
    assert len(slack_receiver.texts) == 1, slack_receiver.texts
    assert "batch_inference" in slack_receiver.texts[0]
    assert "predict" in slack_receiver.texts[0]


SECRET = "password=hunter2-do-not-show"


def test_run_conf_paths_outside_the_repo_are_refused_before_anything_is_read(
    promoted_repo: Path, slack_receiver, capfd: pytest.CaptureFixture, tmp_path: Path
) -> None:
    model_repo = promoted_repo
    outside = tmp_path / "other_team"
    outside.mkdir()
    (outside / "creds.csv").write_text(f"{SECRET},sepal_length\n1,2\n")
    (model_repo / "batch.csv").write_text(
        "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n"
    )
    (model_repo / "shared").symlink_to(outside)
    predictions = model_repo / "output/predictions"
    before = sorted(predictions.rglob("*")) if predictions.exists() else []
    refused = {
        "absolute input": {"input_path": str(outside / "creds.csv")},
        "dot-dot input": {"input_path": "../other_team/creds.csv"},
        "symlink input": {"input_path": "shared/creds.csv"},
        "absolute output": {
            "input_path": "batch.csv",
            "output_path": str(tmp_path / "new/dirs/clobber.csv"),
        },
        "output outside predictions": {
            "input_path": "batch.csv",
            "output_path": "output/serving/clobber.csv",
        },
    }
    for minutes, (case, conf) in enumerate(refused.items(), start=1):
        capfd.readouterr()
        when = LOGICAL_DATE + timedelta(minutes=minutes)
        dagrun = run_dag("batch_inference", when, run_after=when, run_conf=conf)
        out = capfd.readouterr()
        log = out.out + out.err
        assert task_states(dagrun) == {"predict": "failed"}, case
        assert "predict: bad run conf:" in log, (case, log[-2000:])
        where = "output/predictions/" if "output" in case else "inside the model repo"
        assert where in log, (case, log[-2000:])
        assert SECRET not in log, case
    assert not (tmp_path / "new").exists()
    assert not (model_repo / "output/serving/clobber.csv").exists()
    assert (sorted(predictions.rglob("*")) if predictions.exists() else []) == before
    assert sorted(p.name for p in outside.iterdir()) == ["creds.csv"]
