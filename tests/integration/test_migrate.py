"""The one migration step: a model repo whose weather versions are commits on main moves over.

The old layout is made as the old hourly runs made it: the weather pipeline run in a
workspace, its ``weather/dvc.lock`` committed to ``main`` and pushed, the data to the DVC
remote. Then ``python -m batchserving.registry.migrate`` runs in a fresh workspace (a
temporary clone of the server), and the weather runs that follow build on what it moved.
The old runs span five days, so the single raw directory it splits has days to seal.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from batchserving.core.names import WEATHER_LOCK, WEATHER_PIPELINE
from batchserving.weather.fake_kma import FakeKma
from tests.conftest import git, run, task_result
from tests.integration.test_any_worker import PERSON, PUBLISH_WEATHER, Cluster


def old_weather_run(cluster: Cluster, kma: FakeKma, run_at: str) -> None:
    """An hourly run as before: the weather lock committed to main, the data pushed."""
    old = cluster.root / "old-worker"
    if not old.exists():
        run(["git", "clone", "--quiet", cluster.url, str(old)])
        run(["dvc", "remote", "add", "--local", "-d", "shared", str(cluster.remote)], cwd=old)
    env = {"KMA_SERVICE_KEY": kma.key, "KMA_BASE_URL": kma.base_url, "WEATHER_RUN_AT": run_at}
    run(["git", "pull", "--quiet", "--ff-only"], cwd=old)
    run(["dvc", "repro", "--quiet", WEATHER_PIPELINE], cwd=old, env={**cluster.env("x"), **env})
    run(["git", "add", WEATHER_LOCK], cwd=old)
    run(["git", *PERSON, "commit", "--quiet", "-m", f"crawling_weather at {run_at}"], cwd=old)
    run(["dvc", "push", "--quiet"], cwd=old)
    run(["git", "push", "--quiet", "origin", "HEAD:main"], cwd=old)


def refs(cluster: Cluster) -> str:
    return git(cluster.server, "for-each-ref", "--format=%(refname) %(objectname)")


OLD_RUNS = (
    "2026-11-21T14:50:00+09:00",
    "2026-11-22T14:50:00+09:00",
    "2026-11-25T14:50:00+09:00",
    "2026-11-25T15:50:00+09:00",
)


def issuances(root: Path, *tables: str) -> list[str]:
    """The issuances in the history tables under ``root``, each checked to be there once."""
    history = pd.concat([pd.read_parquet(root / "output/weather" / t) for t in tables])
    rows = (history["baseDate"] + history["baseTime"]).value_counts()
    assert (rows == 60).all(), rows[rows != 60]  # 60 forecast values an issuance, never twice
    return sorted(rows.index)


def raw_names(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "output/weather").rglob("raw/**/*.json"))


def test_migration_moves_the_weather_versions_off_main_losing_nothing(cluster: Cluster) -> None:
    model = task_result(cluster.task("ws-model", "batchserving.registry.publish", "evaluate"))
    cluster.task("ws-model", "batchserving.registry.register", "--commit", model["commit"])
    with FakeKma() as kma:
        for run_at in OLD_RUNS:
            old_weather_run(cluster, kma, run_at)
        old_main = git(cluster.server, "rev-parse", "main").strip()
        old_lock = git(cluster.server, "show", f"main:{WEATHER_LOCK}")
        tags = git(cluster.server, "tag", "--list")

        moved = task_result(cluster.task("ws-migrate", "batchserving.registry.migrate"))
        assert moved == {"moved": ["data/weather"], "split": ["data/weather"]}

        # data/weather starts at main's lock, as it was; main stops tracking it, rewriting
        # nothing (the old commits are its ancestors, the tags are the same).
        assert git(cluster.server, "show", f"data/weather~1:{WEATHER_LOCK}") == old_lock
        assert git(cluster.server, "ls-tree", "--name-only", "main", "--", WEATHER_LOCK) == ""
        assert git(cluster.server, "rev-parse", "main~1").strip() == old_main
        assert git(cluster.server, "tag", "--list") == tags
        assert git(cluster.server, "show", f"{old_main}:{WEATHER_LOCK}") == old_lock

        # Run again: nothing to move, nothing changes.
        before = refs(cluster)
        again = task_result(cluster.task("ws-migrate-2", "batchserving.registry.migrate"))
        assert again == {"moved": [], "split": []} and refs(cluster) == before

        # The single raw directory was split: the two days before the open window are sealed
        # into .dvc files of their own on data/weather, the open outputs hold the rest.
        sealed = git(cluster.server, "ls-tree", "-r", "--name-only", "data/weather", "weather/")
        assert {p for p in sealed.split() if p.startswith("weather/sealed/")} == {
            f"weather/sealed/{kind}/{day}.dvc"
            for kind in ("raw", "history")
            for day in ("20261121", "20261122")
        }
        assert raw_names(cluster.root / "ws-migrate-2") == ["202611251430", "202611251530"]

        # The next hourly run, on a fresh worker, builds on the moved version: no issuance lost.
        env = {"KMA_SERVICE_KEY": kma.key, "KMA_BASE_URL": kma.base_url}
        run_at = {"WEATHER_RUN_AT": "2026-11-25T16:50:00+09:00"}
        cluster.task("ws-f", *PUBLISH_WEATHER, "fetch_weather", **env, **run_at)
        cluster.task("ws-p", *PUBLISH_WEATHER, "preprocess_weather")
    # The fresh worker pulled the open days alone; a full pull has every issuance once.
    assert issuances(cluster.root / "ws-p", "history") == [
        "202611251430",
        "202611251530",
        "202611251630",
    ]
    reader = cluster.every_weather_day()
    everything = ["202611211430", "202611221430", "202611251430", "202611251530", "202611251630"]
    assert issuances(reader, "history", "sealed/history") == everything
    assert raw_names(reader) == everything
    # The new versions ran on main as the migration left it; main did not move for them.
    assert git(cluster.server, "rev-parse", "data/weather^2") == git(
        cluster.server, "rev-parse", "main"
    )
