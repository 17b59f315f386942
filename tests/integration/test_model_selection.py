"""model_selection on a temporary clone: real Airflow (dag.test), git, GTO and DVC.

The scenario runs the DAG five times on one repo (bootstrap, unchanged, worse, one row
better: kept by the default test, then promoted under `test: none`);
the other tests drive the same stages from the command line, as `make` does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pendulum

from tests.conftest import (
    PROMOTE,
    last_line,
    locked_task,
    run,
    set_params,
    task_result,
    tree_digest,
)
from tests.integration.dagrun import load_dag, task_output, task_states

TRAIN_KEYS = ("n_estimators", "max_depth", "test_size")
SELECTION_DEFAULTS = {"test": "mcnemar", "alpha": 0.05, "min_score": 0.8}


def run_dag(day: int):
    """One dag.test() run of a freshly parsed DAG, as every real run is.

    (A notifier renders its template in place, so a DAG object reused across runs
    would resend the first run's text.)
    """
    return load_dag("model_selection").test(
        logical_date=pendulum.datetime(2026, 2, day, tz="Asia/Seoul")
    )


def prod_version(repo: Path) -> str | None:
    from batchserving.registry.versions import current_prod

    prod = current_prod(repo)
    return prod.version if prod else None


def versions(repo: Path) -> list[str]:
    return sorted(t for t in run(["git", "tag"], cwd=repo).stdout.split() if "@" in t)


def deployment(repo: Path) -> dict:
    from batchserving.serving.deployment import read_deployment

    return read_deployment(repo / "output/serving").record


def repo_command(repo: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    """A stage command under the repo lock, exactly as the DAG tasks and `make` run it."""
    return locked_task(repo, *command, check=check)


def comparison_of(dag_run) -> dict:
    """The comparison the run's compare task returned (its XCom, the JSON line it printed)."""
    value = task_output(dag_run, "compare")
    return value if isinstance(value, dict) else json.loads(value)


def assert_serving_matches_prod(repo: Path) -> dict:
    record = deployment(repo)
    assert record["version"] == prod_version(repo)
    from batchserving.registry.versions import current_prod

    assert record["commit"] == current_prod(repo).commit
    return record


def prod_tag_message(repo: Path, tag: str) -> dict:
    """The JSON message of a prod assignment tag, read as a person would with git."""
    message = run(["git", "tag", "-l", "--format=%(contents)", tag], cwd=repo).stdout
    return json.loads(message)


# Training params whose forest gets exactly one more of the 45 test rows right than the
# default's (41 vs 40; one row only it gets right, none only the default gets right).
ONE_ROW_BETTER = {"n_estimators": 10, "max_depth": 4, "test_size": 0.3}


def test_selection_promotes_only_better_models(airflow_db, model_repo, slack_receiver):
    # 1. Bootstrap: the first version clears the floor, is registered and promoted.
    dag_run = run_dag(1)
    states = task_states(dag_run)
    assert states["promote"] == "success" and states["keep_champion"] == "skipped", states
    assert states["join"] == "success"
    assert versions(model_repo) == ["iris-model@v0.0.1"]
    assert prod_version(model_repo) == "v0.0.1"
    assert assert_serving_matches_prod(model_repo)["stage"] == "prod"
    assert len(slack_receiver.texts) == 1
    assert "promoted iris-model v0.0.1 to prod" in slack_receiver.texts[0]
    assert "first prod version" in slack_receiver.texts[0]
    assert "evidence: none (no champion to compare with)" in slack_receiver.texts[0]
    first = prod_tag_message(model_repo, "iris-model#prod#1")
    assert first["decision"] == "promote" and first["evidence"] is None
    assert "clears the floor min_score 0.8" in first["reason"]
    assert (
        "Airflow model registry"
        in run(["git", "cat-file", "tag", "iris-model#prod#1"], cwd=model_repo).stdout
    )

    # 2. Nothing changed: no new version, the champion stays, the deployment is untouched.
    before = (model_repo / "output/serving/model.json").read_bytes()
    dag_run = run_dag(2)
    states = task_states(dag_run)
    assert states["keep_champion"] == "success" and states["promote"] == "skipped", states
    assert versions(model_repo) == ["iris-model@v0.0.1"]
    assert (model_repo / "output/serving/model.json").read_bytes() == before
    assert len(slack_receiver.texts) == 2
    assert "kept champion iris-model v0.0.1" in slack_receiver.texts[1]
    assert "already the champion" in slack_receiver.texts[1]
    assert "McNemar p = 1 (0 challenger-only vs 0 champion-only rows)" in slack_receiver.texts[1]

    # 3. Worse params on another split: registered, champion scored on the new rows, kept.
    set_params(model_repo, "train", n_estimators=1, max_depth=1, test_size=0.4)
    dag_run = run_dag(3)
    states = task_states(dag_run)
    assert states["keep_champion"] == "success" and states["promote"] == "skipped", states
    assert versions(model_repo) == ["iris-model@v0.0.1", "iris-model@v0.0.2"]
    assert prod_version(model_repo) == "v0.0.1"
    comparison = comparison_of(dag_run)
    assert comparison["champion"]["metrics_source"] == "scored on the current test rows"
    assert comparison["champion"]["metrics"]["n_test"] == 60
    assert comparison["evidence"]["n"] == 60
    assert comparison["deltas"]["f1_macro"] < 0
    assert (model_repo / "output/serving/model.json").read_bytes() == before
    assert len(slack_receiver.texts) == 3
    kept = slack_receiver.texts[2]
    assert "kept champion iris-model v0.0.1" in kept and "challenger v0.0.2" in kept
    assert f"f1_macro {comparison['deltas']['f1_macro']:+.6f}" in kept

    # 4. One row better on the same 45 rows: registered, but McNemar cannot tell it from
    #    chance (p = 1.0), so the default gate keeps the champion.
    set_params(model_repo, "train", **ONE_ROW_BETTER)
    dag_run = run_dag(4)
    states = task_states(dag_run)
    assert states["keep_champion"] == "success" and states["promote"] == "skipped", states
    assert versions(model_repo)[-1] == "iris-model@v0.0.3"
    assert prod_version(model_repo) == "v0.0.1"
    comparison = comparison_of(dag_run)
    evidence = comparison["evidence"]
    assert (evidence["test"], evidence["alpha"], evidence["n"]) == ("mcnemar", 0.05, 45)
    assert (evidence["challenger_only"], evidence["champion_only"]) == (1, 0)
    assert evidence["p_value"] == 1.0
    assert evidence["delta_ci"]["low"] == 0.0 < evidence["delta_ci"]["high"]
    scores = [comparison[k]["metrics"] for k in ("champion", "challenger")]
    assert [round(m["accuracy"] * 45) for m in scores] == [40, 41]
    assert comparison["deltas"]["f1_macro"] > 0
    assert comparison["decision"] == "keep" and "not significant" in comparison["reason"]
    assert (model_repo / "output/serving/model.json").read_bytes() == before
    kept = slack_receiver.texts[3]
    assert "kept champion iris-model v0.0.1" in kept and "challenger v0.0.3" in kept
    ci = evidence["delta_ci"]
    assert "McNemar p = 1 (1 challenger-only vs 0 champion-only rows)" in kept
    assert f"95% interval of the f1_macro delta [{ci['low']:+.4f}, {ci['high']:+.4f}]" in kept
    assert "\n" not in kept

    # 5. The same versions under `test: none` (the point rule): the one-row gain promotes,
    #    and the prod tag's message carries the evidence it was promoted on.
    set_params(model_repo, "selection", test="none")
    dag_run = run_dag(5)
    states = task_states(dag_run)
    assert states["promote"] == "success" and states["keep_champion"] == "skipped", states
    assert prod_version(model_repo) == "v0.0.3"
    assert versions(model_repo)[-1] == "iris-model@v0.0.3"
    comparison = comparison_of(dag_run)
    record = assert_serving_matches_prod(model_repo)
    assert record["metrics"]["f1_macro"] == comparison["challenger"]["metrics"]["f1_macro"]
    tagged = prod_tag_message(model_repo, "iris-model#prod#2")
    assert tagged["decision"] == "promote" and tagged["rule"]["test"] == "none"
    assert tagged["evidence"] == {**evidence, "test": "none"}
    assert len(slack_receiver.texts) == 5
    promoted = slack_receiver.texts[4]
    old, new = (comparison[k]["metrics"]["f1_macro"] for k in ("champion", "challenger"))
    assert f"promoted iris-model v0.0.3 to prod: f1_macro {old} → {new}" in promoted
    assert f"delta {comparison['deltas']['f1_macro']:+.6f}" in promoted
    assert "McNemar p = 1 (1 challenger-only vs 0 champion-only rows)" in promoted
    assert f"[{ci['low']:+.4f}, {ci['high']:+.4f}]" in promoted

    # Rollback to v0.0.1, then redeploy prod into an emptied output/serving.
    repo_command(model_repo, "python", "-m", "batchserving.selection.promote", "rollback", "v0.0.1")
    assert prod_version(model_repo) == "v0.0.1"
    record = assert_serving_matches_prod(model_repo)
    assert run(
        [
            "dvc",
            "artifacts",
            "get",
            ".",
            "iris-model",
            "--stage",
            "prod",
            "-o",
            str(model_repo.parent / "prod.joblib"),
        ],
        cwd=model_repo,
    )
    from batchserving.serving.deployment import file_md5

    assert file_md5(model_repo.parent / "prod.joblib") == record["model_md5"]
    shutil.rmtree(model_repo / "output/serving")
    repo_command(model_repo, "python", "-m", "batchserving.selection.promote", "redeploy")
    assert assert_serving_matches_prod(model_repo) == record  # same record, same model
    assert len(slack_receiver.texts) == 5
    assert slack_receiver.url not in "".join(slack_receiver.texts)


BAD_METRICS = {
    "missing": (None, "metrics.json is missing"),
    "empty": ("", "metrics.json is empty"),
    "not json": ("{oops", "metrics.json is not valid JSON"),
    "no primary metric": ('{"accuracy": 0.9}', "has no 'f1_macro'"),
    "nan": ('{"accuracy": 0.9, "f1_macro": NaN}', "'f1_macro' = nan is not a finite number"),
}


def test_bad_metrics_fail_compare_and_change_nothing(promoted_repo):
    repo = promoted_repo
    tags = run(["git", "tag"], cwd=repo).stdout
    serving = {p.name: p.read_bytes() for p in (repo / "output/serving").iterdir()}
    for name, (text, expected) in BAD_METRICS.items():
        metrics = repo / "metrics.json"
        if text is None:
            metrics.unlink()
        else:
            metrics.write_text(text)
        result = repo_command(repo, "python", "-m", "batchserving.selection.compare", check=False)
        assert result.returncode != 0, name
        assert expected in result.stderr and "nothing was promoted" in result.stderr, name
        assert not result.stdout.strip().endswith("}"), name  # no comparison as its XCom
        # Without a comparison the promote step refuses too.
        result = repo_command(
            repo,
            *PROMOTE,
            last_line(result.stdout),
            check=False,
        )
        assert (
            result.returncode != 0 and "the compare step returned no result object" in result.stderr
        )
        assert run(["git", "tag"], cwd=repo).stdout == tags, name
        assert {p.name: p.read_bytes() for p in (repo / "output/serving").iterdir()} == serving


def test_a_floor_above_the_score_blocks_the_first_version(airflow_db, model_repo, slack_receiver):
    """min_score above what the model reaches: kept, nothing in prod, nothing deployed."""
    set_params(model_repo, "selection", test="bootstrap", min_score=0.95)
    dag_run = run_dag(1)
    states = task_states(dag_run)
    assert states["keep_champion"] == "success" and states["promote"] == "skipped", states
    assert dag_run.state == "success"
    assert versions(model_repo) == ["iris-model@v0.0.1"]
    assert prod_version(model_repo) is None
    assert run(["git", "tag", "-l", "iris-model#prod*"], cwd=model_repo).stdout == ""
    assert not (model_repo / "output/serving").exists()
    comparison = comparison_of(dag_run)
    assert comparison["decision"] == "keep" and comparison["evidence"] is None
    assert comparison["challenger"]["metrics"]["f1_macro"] < 0.95
    assert len(slack_receiver.texts) == 1
    text = slack_receiver.texts[0]
    assert "nothing promoted" in text and "the floor blocked it" in text
    assert "below min_score 0.95" in text


BAD_SELECTION_PARAMS = {
    "test": ("ttest", "'selection.test' = 'ttest'", "mcnemar"),
    "alpha": (1.0, "'selection.alpha' = 1.0", "strictly between 0 and 1"),
    "min_score": (-0.1, "'selection.min_score' = -0.1", "a number from 0 to 1"),
}


def test_bad_selection_params_fail_compare_and_change_nothing(promoted_repo):
    repo = promoted_repo
    tags = run(["git", "tag"], cwd=repo).stdout
    serving = tree_digest(repo / "output/serving")
    for key, (value, named, allowed) in BAD_SELECTION_PARAMS.items():
        set_params(repo, "selection", **{**SELECTION_DEFAULTS, key: value})
        result = repo_command(repo, "python", "-m", "batchserving.selection.compare", check=False)
        assert result.returncode != 0, key
        assert named in result.stderr and allowed in result.stderr, result.stderr
        assert "nothing was promoted" in result.stderr
        assert not result.stdout.strip().endswith("}"), key  # no comparison as its XCom
        assert run(["git", "tag"], cwd=repo).stdout == tags, key
        assert tree_digest(repo / "output/serving") == serving, key


def test_prod_model_in_neither_cache_nor_remote_is_a_clear_error(promoted_repo):
    """A machine without the deployment, whose cache and remote lost the model, is told so."""
    repo = promoted_repo
    shutil.rmtree(repo / ".dvc/cache")
    shutil.rmtree(repo / "dvc-remote")
    shutil.rmtree(repo / "output/serving")
    result = repo_command(
        repo, "python", "-m", "batchserving.selection.promote", "redeploy", check=False
    )
    assert result.returncode != 0
    assert "iris-model@v0.0.1" in result.stderr
    assert "neither the DVC cache nor the remote 'local'" in result.stderr
    assert str(repo / "dvc-remote") in result.stderr
    assert not (repo / "output/serving").exists()  # no half deployment left behind


def test_promote_resumes_after_a_kill_between_tag_and_deployment(promoted_repo):
    """Prod tag already on the version but output/serving lost: the next run redeploys."""
    repo = promoted_repo
    shutil.rmtree(repo / "output/serving")
    output = repo_command(repo, "python", "-m", "batchserving.selection.compare").stdout
    comparison = json.loads(last_line(output))
    assert comparison["decision"] == "redeploy", comparison
    result = repo_command(repo, *PROMOTE, json.dumps(comparison))
    assert task_result(result.stdout)["message"].startswith(":arrows_counterclockwise:")
    assert assert_serving_matches_prod(repo)["version"] == "v0.0.1"
    assert run(["git", "tag", "-l", "iris-model#prod*"], cwd=repo).stdout.split() == [
        "iris-model#prod#1"
    ]


def test_train_and_selection_started_together_agree(airflow_db, model_repo):
    """Both DAGs for one logical date at the same moment on one repo (two processes)."""
    # As `make run` runs them: `airflow dags test` cannot run a DAG with a deadline alert.
    env = {**os.environ, "MODEL_REPO": str(model_repo), "BATCHSERVING_DEADLINES": "off"}
    env.pop("AIRFLOW_CONN_MY_WEBHOOK", None)
    # Two processes parsing into a fresh metadata DB race on inserting the DAG rows
    # (an Airflow limit of SQLite, not ours): register the DAGs once beforehand.
    run(["airflow", "dags", "reserialize"], env=env)
    procs = [
        subprocess.Popen(
            ["airflow", "dags", "test", dag_id, "2026-03-01T00:30:00+09:00"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for dag_id in ("simple_train", "model_selection")
    ]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
        assert re.search(r"DagRun Finished: dag_id=\w+, .*state=success", output), output[-3000:]
    assert versions(model_repo) == ["iris-model@v0.0.1"]
    assert prod_version(model_repo) == "v0.0.1"
    assert assert_serving_matches_prod(model_repo)["version"] == "v0.0.1"
