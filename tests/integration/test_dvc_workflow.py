"""A DVC user's path in a fresh clone, with no KMA key and no network.

`dvc repro` and `dvc exp run` at the root run the model pipeline only; an experiment
applied and committed becomes the next version when `simple_train` runs (the real DAG);
`dvc metrics diff`, `dvc params diff` and `dvc plots diff` compare version tags; the
weather pipeline runs by hand with one command and leaves the model pipeline alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from batchserving.core.names import (
    MONITORING_LOCK,
    MONITORING_PIPELINE,
    PIPELINE,
    WEATHER_LOCK,
    WEATHER_PIPELINE,
)
from batchserving.weather.fake_kma import FakeKma
from tests.conftest import git, run
from tests.integration.dagrun import run_dag, task_states

pytestmark = pytest.mark.usefixtures("airflow_db")

PERSON = ["-c", "user.name=Data Scientist", "-c", "user.email=ds@example.invalid"]


@pytest.fixture
def clone(model_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `git clone` of the model repo, as a user gets it: no outputs, no key, no KMA URL."""
    path = tmp_path / "clone"
    run(["git", "clone", "-q", str(model_repo), str(path)])
    for name in ("KMA_SERVICE_KEY", "KMA_BASE_URL", "AIRFLOW_CONN_KMA_API"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODEL_REPO", str(path))
    return path


def dvc(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return run(["dvc", *args], cwd=repo, env={**os.environ, **(env or {})}).stdout


def experiments(repo: Path) -> dict[str, dict]:
    """`dvc exp show --json`: experiment name -> its params.yaml and metrics.json data."""
    found = {}
    for row in json.loads(dvc(repo, "exp", "show", "--json")):
        for exp in row.get("experiments") or []:
            data = exp["revs"][0]["data"]
            found[exp["name"]] = {
                "params": data["params"]["params.yaml"]["data"],
                "metrics": data["metrics"]["metrics.json"]["data"],
            }
    return found


def test_the_committed_lock_pins_the_code_as_committed(clone: Path) -> None:
    """No dep of the model pipeline differs from what dvc.lock says: a clone retrains nothing.

    A stage's module edited without regenerating dvc.lock would make every new workspace
    rerun the pipeline at its first task and commit the lock there.
    """
    status = json.loads(dvc(clone, "status", "--json", PIPELINE))
    stale = sorted(
        f"{stage}: {path}"
        for stage, changes in status.items()
        for change in changes
        if isinstance(change, dict)
        for path, state in change.get("changed deps", {}).items()
        if state == "modified"
    )
    assert stale == [], f"dvc.lock is stale ({stale}): run `dvc repro` and commit dvc.lock"


def test_fresh_clone_repro_and_experiments_need_no_key_and_an_experiment_is_a_version(
    clone: Path,
) -> None:
    # `dvc repro` at the root: the model pipeline only, never the weather stages.
    out = dvc(clone, "repro")
    assert "fetch_weather" not in out and (clone / "metrics.json").is_file()
    assert not (clone / "output/weather").exists() and not (clone / WEATHER_LOCK).exists()
    git(clone, *PERSON, "commit", "-q", "--allow-empty", "-am", "Baseline pipeline state")
    first = run_dag("simple_train")
    assert first.state == "success", task_states(first)

    # An experiment: `dvc exp run -S`, then `dvc exp show --json` lists it with its results.
    out = dvc(clone, "exp", "run", "-S", "train.n_estimators=20", "-S", "train.max_depth=2")
    assert "fetch_weather" not in out
    exps = experiments(clone)
    assert len(exps) == 1, exps
    name, exp = next(iter(exps.items()))
    assert exp["params"]["train"]["n_estimators"] == 20
    assert exp["params"]["train"]["max_depth"] == 2
    assert 0 < exp["metrics"]["accuracy"] <= 1 and 0 < exp["metrics"]["f1_macro"] <= 1

    # `dvc exp run` leaves its experiment in the workspace: committed, it is the next
    # version when simple_train runs.
    git(clone, *PERSON, "commit", "-q", "-am", f"Experiment {name}: 20 shallow trees")
    committed = git(clone, "rev-parse", "HEAD").strip()
    second = run_dag("simple_train")
    assert second.state == "success", task_states(second)
    tags = ["iris-model@v0.0.1", "iris-model@v0.0.2"]
    assert git(clone, "tag", "--list", "iris-model@*").split() == tags
    assert git(clone, "rev-list", "-n1", tags[1]).strip() == committed
    assert json.loads(git(clone, "show", f"{tags[1]}:metrics.json")) == exp["metrics"]

    # Version tags compare with DVC's own commands.
    params = json.loads(dvc(clone, "params", "diff", *tags, "--json"))["params.yaml"]
    assert params["train.n_estimators"] == {"old": 100, "new": 20, "diff": -80}
    metrics = json.loads(dvc(clone, "metrics", "diff", *tags, "--all", "--json"))
    assert metrics["metrics.json"]["accuracy"]["new"] == exp["metrics"]["accuracy"]
    plots = json.loads(dvc(clone, "plots", "diff", *tags, "--json", "--split"))["data"]
    assert {"Confusion matrix", "Feature importance"} <= set(plots)
    assert all(plot["revisions"] == tags for name in plots for plot in plots[name])


def test_weather_by_hand_then_an_applied_experiment_is_the_next_version(clone: Path) -> None:
    dvc(clone, "repro")
    model_lock = (clone / "dvc.lock").read_bytes()
    git(clone, *PERSON, "commit", "-q", "--allow-empty", "-am", "Baseline pipeline state")
    assert run_dag("simple_train").state == "success"

    # The weather pipeline by hand: one command, the model pipeline left alone.
    with FakeKma() as kma:
        env = {"KMA_SERVICE_KEY": kma.key, "KMA_BASE_URL": kma.base_url}
        out = dvc(clone, "repro", WEATHER_PIPELINE, env=env)
    for stage in ("fetch_weather", "preprocess_weather"):
        assert f"Running stage '{WEATHER_PIPELINE}:{stage}'" in out
    assert (clone / WEATHER_LOCK).is_file() and any((clone / "output/weather/raw").iterdir())
    # The monitoring pipeline by hand, for a day: it too leaves the model pipeline alone.
    out = dvc(clone, "repro", MONITORING_PIPELINE, env={"MONITOR_DAY": "2026-03-01"})
    assert f"Running stage '{MONITORING_PIPELINE}:monitor_predictions'" in out
    assert (clone / MONITORING_LOCK).is_file()
    assert (clone / "output/monitoring/2026-03-01/report.html").is_file()
    assert "Running stage" not in dvc(clone, "repro")
    assert (clone / "dvc.lock").read_bytes() == model_lock

    # With every pipeline's outputs present, `dvc exp apply` + `git commit` adopts one of
    # several experiments; simple_train registers it, and never the weather or the
    # monitoring data version: those are recorded on data/<pipeline> only (docs/weather.md).
    dvc(clone, "exp", "run", "-n", "small", "-S", "train.n_estimators=5")
    dvc(clone, "exp", "run", "-n", "shallow", "-S", "train.max_depth=1")
    assert set(experiments(clone)) == {"small", "shallow"}
    dvc(clone, "exp", "apply", "small")
    git(clone, *PERSON, "commit", "-q", "-am", "Experiment small: 5 trees")
    result = run_dag("simple_train")
    assert result.state == "success", task_states(result)
    assert git(clone, "tag", "--list", "iris-model@*").split()[-1] == "iris-model@v0.0.2"
    params = json.loads(
        dvc(clone, "params", "diff", "iris-model@v0.0.1", "iris-model@v0.0.2", "--json")
    )
    assert params["params.yaml"]["train.n_estimators"] == {"old": 100, "new": 5, "diff": -95}
    tracked = git(clone, "ls-tree", "-r", "--name-only", "iris-model@v0.0.2")
    assert "dvc.lock" in tracked.split()
    assert WEATHER_LOCK not in tracked.split() and MONITORING_LOCK not in tracked.split()
    # The data pipelines' files stay untracked on main: their versions live on data/<name>.
    data_files = [MONITORING_LOCK, "monitoring/history.csv", "monitoring/metrics.json"]
    untracked = "".join(f"?? {path}\n" for path in sorted([*data_files, WEATHER_LOCK]))
    assert git(clone, "status", "--porcelain") == untracked
