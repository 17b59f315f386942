"""Data versions on a ref of their own: weather runs against a bare git server never touch main.

Each run is the crawling_weather tasks' commands (``publish --pipeline weather``) in a
brand-new workspace, against the fake KMA, a bare repository as the git server and a
directory as the DVC remote, exactly as on a worker of the cluster.
"""

from __future__ import annotations

import subprocess

import pandas as pd

from batchserving.core.names import WEATHER_LOCK
from batchserving.weather.fake_kma import FakeKma
from tests.conftest import git, run, task_result
from tests.integration.test_any_worker import PERSON, Cluster

KEY = "data-ref-test-key"
RUNS = ("2026-11-25T14:50:00+09:00", "2026-11-25T15:50:00+09:00", "2026-11-25T16:50:00+09:00")


def weather_run(cluster: Cluster, kma: FakeKma, n: int, run_at: str) -> list[dict]:
    """One crawling_weather run (fetch, then preprocess), each task on a fresh worker."""
    env = {"KMA_SERVICE_KEY": KEY, "KMA_BASE_URL": kma.base_url, "WEATHER_RUN_AT": run_at}
    publish = ("batchserving.registry.publish", "--pipeline", "weather", "--single-item")
    fetched = cluster.task(f"fetch-{n}", *publish, "fetch_weather", **env)
    preprocessed = cluster.task(f"preprocess-{n}", *publish, "preprocess_weather")
    return [task_result(fetched), task_result(preprocessed)]


def test_weather_versions_go_on_their_branch_and_a_persons_push_is_never_rejected(
    cluster: Cluster,
) -> None:
    main_before = git(cluster.server, "rev-parse", "refs/heads/main").strip()
    person = cluster.person_clone()
    results = []
    with FakeKma(key=KEY) as kma:
        for n, run_at in enumerate(RUNS):
            results += weather_run(cluster, kma, n, run_at)
            # A person pushes to main at once, without pulling first: never rejected.
            (person / "NOTES.md").write_text(f"note {n}\n", encoding="utf-8")
            run(["git", "add", "NOTES.md"], cwd=person)
            run(["git", *PERSON, "commit", "--quiet", "-m", f"Note {n}"], cwd=person)
            run(["git", "push", "--quiet", "origin", "HEAD:main"], cwd=person)

    # main holds the person's three commits and nothing of the weather.
    main_log = git(cluster.server, "log", "--format=%s", f"{main_before}..main").split("\n")
    assert [s for s in main_log if s] == ["Note 2", "Note 1", "Note 0"]
    assert git(cluster.server, "ls-tree", "-r", "--name-only", "main", "--", WEATHER_LOCK) == ""

    # data/weather gained one version per task, each the tip its task reported.
    versions = git(cluster.server, "rev-list", "--first-parent", "data/weather", "--not", "main")
    versions = versions.split()
    assert versions[::-1] == [r["commit"] for r in results]
    assert all(r["ref"] == "data/weather" for r in results)
    # Each version's second parent is the main commit it ran on, the person's included.
    assert (
        git(cluster.server, "rev-parse", f"{versions[0]}^2").strip()
        == git(cluster.server, "rev-parse", "main~1").strip()
    )
    # A fresh worker holds the one data version it builds on, never the data history: its
    # clone is main's, and the data tip came alone (depth 1).
    worker = cluster.root / "fetch-2"
    first = ["git", "cat-file", "-e", f"{versions[-1]}^{{commit}}"]
    assert subprocess.run(first, cwd=worker, capture_output=True).returncode != 0
    assert git(worker, "cat-file", "-t", versions[2]).strip() == "commit"  # the tip it built on
    remote_refs = set(git(worker, "for-each-ref", "--format=%(refname)", "refs/remotes").split())
    assert remote_refs - {"refs/remotes/origin/HEAD"} == {
        "refs/remotes/origin/data/weather",
        "refs/remotes/origin/main",
    }
    lock = git(cluster.server, "show", f"data/weather:{WEATHER_LOCK}")
    assert "fetch_weather:" in lock and "preprocess_weather:" in lock

    # A person gets the latest weather version as the README says, and it has all three runs.
    reader = cluster.root / "reader"
    run(["git", "clone", "--quiet", cluster.url, str(reader)])
    run(["git", "fetch", "--quiet", "origin", "data/weather"], cwd=reader)
    (reader / WEATHER_LOCK).write_text(git(reader, "show", f"FETCH_HEAD:{WEATHER_LOCK}"))
    run(["dvc", "remote", "add", "--local", "-d", "shared", str(cluster.remote)], cwd=reader)
    run(["dvc", "pull", "--quiet", "weather/dvc.yaml"], cwd=reader)
    history = pd.read_parquet(reader / "output/weather/history")
    assert set(history["baseTime"]) == {"1430", "1530", "1630"}
