"""Crash safety: ``kill -9`` a writer of the model repo in the middle of its work.

Afterwards: no stale lock blocks anyone (the repo lock is an flock, released by the
kernel when its holder dies; DVC's own locks likewise), the versions, tags and deployment
that existed are untouched, and the next run succeeds with no manual cleanup.

Three kill points, each with the task's own command (``python -m batchserving...``, which
takes the repo lock itself) in a process group of its own, killed whole: mid-training
(the publish step's ``dvc repro evaluate`` while the train stage runs), mid-promotion
(after the ``iris-model#prod#N`` tag, before the deployment; held there by a breakpoint
the test injects into the promote command's interpreter, as the natural window is
~0.1 s) and mid-weather-fetch (while the fake KMA server holds its answer). The pieces:
start the command with ``start_writer()``, ``kill_when()`` its output or process tree
shows the point, then check with a ``RepoState`` captured before.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from filelock import FileLock

from batchserving import PROJECT_ROOT
from batchserving.core.names import LOCK_FILE, WEATHER_LOCK, WEATHER_PIPELINE
from batchserving.weather.fake_kma import FakeKma
from tests.conftest import last_line, set_params, tree_digest
from tests.e2e.checks import (
    LOCK_CONTENTION,
    Prod,
    current_prod,
    deployment_problems,
    git,
    registry_problems,
)


def writer_env(repo: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "MODEL_REPO": str(repo), "PYTHONUNBUFFERED": "1", **(extra or {})}


def run_writer(repo: Path, *command: str, env: dict[str, str] | None = None) -> str:
    """Run a writer's command to completion (as a task would); fail with its output."""
    result = subprocess.run(
        list(command),
        cwd=PROJECT_ROOT,
        env=writer_env(repo, env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stderr + result.stdout  # stdout last: its last line is the task's XCom
    assert result.returncode == 0, f"{command} failed:\n{output}"
    return output


TRAIN = ("python", "-m", "batchserving.registry.publish", "evaluate")
REGISTER = ("python", "-m", "batchserving.registry.register")
COMPARE = ("python", "-m", "batchserving.selection.compare")


def run_model_selection(repo: Path, promote: bool = True) -> tuple[str, str]:
    """The tasks of model_selection in order, each given the XCom it reads; (output, comparison)."""
    output = run_writer(repo, *TRAIN)
    output += run_writer(repo, *REGISTER, "--published", last_line(output))
    compared = run_writer(repo, *COMPARE)
    output += compared
    if promote:
        output += run_writer(repo, *promote_command(last_line(compared)))
    return output, last_line(compared)


def promote_command(comparison: str) -> tuple[str, ...]:
    return (
        "python",
        "-m",
        "batchserving.selection.promote",
        "promote",
        "--comparison-json",
        comparison,
    )


def start_writer(repo: Path, *command: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a writer's command in its own process group (so kill -9 reaches dvc and its stage)."""
    return subprocess.Popen(
        list(command),
        cwd=PROJECT_ROOT,
        env=writer_env(repo, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def group_processes(pgid: int) -> list[tuple[int, str, str]]:
    """(pid, state, command line) of every process in group ``pgid``, zombies included."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # stat: "pid (comm) state ppid pgrp ..."; comm may contain spaces, not ") ".
            state, _, group = (entry / "stat").read_text().rsplit(") ", 1)[1].split()[:3]
            if int(group) == pgid:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append((int(entry.name), state, cmdline))
        except (OSError, IndexError, ValueError):
            continue
    return found


def group_cmdlines(pgid: int) -> list[str]:
    """Command lines of the live processes in group ``pgid`` (zombies are dead already)."""
    return [cmdline for _, state, cmdline in group_processes(pgid) if state != "Z"]


def group_pids(pgid: int) -> list[int]:
    """Every process still in group ``pgid``, zombies included (not yet reaped)."""
    return [pid for pid, _, _ in group_processes(pgid)]


def wait_reaped(pgid: int, timeout: float = 30) -> None:
    """Wait until init has reaped the killed group's orphans (their pids are gone).

    DVC's rwlock (.dvc/tmp/rwlock) names its holders by pid and counts a pid as a live
    holder while it exists, and a zombie's pid exists. An init that reaps at once (tini,
    systemd, ``docker run --init``) makes that instant; this sandbox's PID 1 reaps lazily
    (~1 s), and a container whose PID 1 never reaps would keep the rwlock stale for good.
    """
    deadline = time.monotonic() + timeout
    while (left := group_pids(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes {left} of the killed task alive or unreaped after {timeout:.0f}s"


def kill_when(
    proc: subprocess.Popen, ready: Callable[[str, list[str]], bool], timeout: float = 120
) -> str:
    """SIGKILL ``proc``'s whole group as soon as ``ready(output, cmdlines)``; return output."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            output = "".join(lines)
            if ready(output, group_cmdlines(proc.pid)):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            assert proc.poll() is None, f"finished before the kill point:\n{output}"
            time.sleep(0.05)
        else:
            raise AssertionError(f"kill point not reached in {timeout:.0f}s:\n{output}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    output = "".join(lines)
    assert proc.returncode == -signal.SIGKILL
    wait_reaped(proc.pid)  # none survived the kill, none lingers unreaped
    return output


@dataclass(frozen=True)
class RepoState:
    """What a killed writer must leave as it was: commits, tags, deployment, weather data."""

    head: str
    data: str  # the data branches (data/weather)
    tags: dict[str, str]
    serving: dict[str, str]
    weather: dict[str, str]

    @classmethod
    def capture(cls, repo: Path) -> RepoState:
        tags = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/tags")
        return cls(
            head=git(repo, "rev-parse", "HEAD").strip(),
            data=git(repo, "for-each-ref", "refs/heads/data"),
            tags=dict(line.split() for line in tags.splitlines()),
            serving=tree_digest(repo / "output" / "serving"),
            weather=tree_digest(repo / "output" / "weather"),
        )


def assert_lock_free(repo: Path) -> None:
    """The repo lock can be taken at once: nobody holds it, and a dead holder left none."""
    with FileLock(repo / LOCK_FILE, timeout=0):
        pass


def assert_recovered(repo: Path, before: RepoState) -> None:
    """After the kill: lock free, everything that existed untouched, registry consistent."""
    assert_lock_free(repo)
    assert RepoState.capture(repo) == before
    assert registry_problems(repo) == []


def test_kill_during_training_leaves_no_stale_lock_and_no_damage(model_repo: Path) -> None:
    # A registered version exists before the crash.
    run_writer(model_repo, *REGISTER, "--published", last_line(run_writer(model_repo, *TRAIN)))
    before = RepoState.capture(model_repo)
    assert [t for t in before.tags if t.startswith("iris-model@")] == ["iris-model@v0.0.1"]

    # A person changes a parameter; the next training run is killed while it trains.
    params = model_repo / "params.yaml"
    params.write_text(re.sub(r"(?m)^(\s*n_estimators:\s*)\d+", r"\g<1>400", params.read_text()))
    training = start_writer(model_repo, *TRAIN)
    output = kill_when(
        training,
        lambda out, cmds: "Running stage 'train'" in out and any("stages.train" in c for c in cmds),
    )
    assert "Running stage 'evaluate'" not in output

    assert_recovered(model_repo, before)
    # The next run needs no cleanup: it trains, registers a new version, meets no busy lock.
    started = time.monotonic()
    output = run_writer(model_repo, *TRAIN)
    output += run_writer(model_repo, *REGISTER, "--published", last_line(output))
    assert time.monotonic() - started < 120
    assert not [m for m in LOCK_CONTENTION if m in output], output
    assert "registered iris-model@v0.0.2" in output
    assert registry_problems(model_repo) == []
    after = RepoState.capture(model_repo)
    assert {t: before.tags[t] for t in before.tags} == {t: after.tags[t] for t in before.tags}


# -- kill -9 mid-promotion: after the prod tag, before the deployment --------------------


HOLD_AFTER_ASSIGN = """\
# Written by the fault test: hold this process right after GTO writes the prod tag.
import pathlib
import time

import gto.api

_assign = gto.api.assign


def assign(*args, **kwargs):
    result = _assign(*args, **kwargs)
    pathlib.Path({marker!r}).touch()
    time.sleep(300)
    return result


gto.api.assign = assign
"""


def hold_after_prod_tag(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A breakpoint injected from outside: (its marker, the environment that arms it).

    GTO writes tags without the git CLI (no git hook sees them), so the test puts a
    ``sitecustomize`` module on the promote command's ``PYTHONPATH`` that wraps
    ``gto.api.assign``: once the prod tag is written it touches the marker and sleeps, so
    the promotion stops right after the tag and before the deployment.
    """
    marker = tmp_path / "prod-tag-written"
    inject = tmp_path / "hold-after-assign"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(HOLD_AFTER_ASSIGN.format(marker=str(marker)))
    return marker, {"PYTHONPATH": str(inject)}


def assert_serves(repo: Path, prod: Prod) -> None:
    """output/serving holds ``prod``'s model (record, dvc.lock and file agree) and it predicts."""
    import joblib
    import pandas as pd

    from batchserving.serving.deployment import read_deployment
    from batchserving.training.iris import CLASSES, FEATURES

    assert deployment_problems(repo, prod) == []
    model = joblib.load(read_deployment(repo / "output" / "serving").model_path)
    row = pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns=FEATURES)
    assert model.predict(row)[0] in CLASSES


def test_kill_between_prod_tag_and_deployment_keeps_old_deployment_and_recovers(
    model_repo: Path,
) -> None:
    # v0.0.1 (a weak forest) is prod and deployed; v0.0.2 (the default params) beats it.
    # The weak forest is below the default floor (selection.min_score): lower it to 0.
    set_params(model_repo, "train", n_estimators=1, max_depth=1)
    set_params(model_repo, "selection", min_score=0.0)
    run_model_selection(model_repo)
    [old_prod] = current_prod(model_repo)
    assert old_prod.version == "v0.0.1"
    set_params(model_repo, "train", n_estimators=100, max_depth=4)
    output, comparison = run_model_selection(model_repo, promote=False)
    assert "v0.0.2 vs champion v0.0.1: promote" in output
    before = RepoState.capture(model_repo)

    # The promotion is killed once the new prod tag exists, before the deployment starts.
    marker, armed = hold_after_prod_tag(model_repo.parent)
    promotion = start_writer(model_repo, *promote_command(comparison), env=armed)
    output = kill_when(promotion, lambda _out, _cmds: marker.exists())
    assert "deployed" not in output
    new_tag = "iris-model#prod#2"
    after_kill = RepoState.capture(model_repo)
    assert set(after_kill.tags) == set(before.tags) | {new_tag}
    # Only the tag happened: commits, the old deployment and the weather data are intact.
    assert replace(after_kill, tags=before.tags) == before
    [prod] = current_prod(model_repo)
    assert prod.version == "v0.0.2"
    # Until the next run, output/serving still serves the previous prod version, whole.
    assert_serves(model_repo, old_prod)
    assert_lock_free(model_repo)
    assert registry_problems(model_repo) == []

    # The next model_selection run needs no cleanup: it sees prod deployed nowhere and
    # redeploys it, without a second tag.
    started = time.monotonic()
    output, _ = run_model_selection(model_repo)
    assert time.monotonic() - started < 180
    assert not [m for m in LOCK_CONTENTION if m in output], output
    assert "v0.0.2 vs champion v0.0.2: redeploy" in output
    assert "redeployed into output/serving" in output
    assert current_prod(model_repo) == [prod]
    assert_serves(model_repo, prod)
    assert registry_problems(model_repo) == []
    final = RepoState.capture(model_repo)
    assert final.tags == after_kill.tags and final.head == before.head


# -- kill -9 mid-weather-fetch: while the KMA server holds its answer ---------------------

BASELINE_AT = "2026-11-25T14:50:00+09:00"  # issuance 202611251430
RUN_AT = "2026-11-25T17:50:00+09:00"  # issuance 202611251730: a new raw file if it succeeds
PUBLISH_WEATHER = ("python", "-m", "batchserving.registry.publish", "--pipeline", "weather")
WEATHER_STEPS = tuple(  # the tasks of crawling_weather, in order (dags/04-crawling_weather.py)
    (*PUBLISH_WEATHER, "--single-item", stage) for stage in ("fetch_weather", "preprocess_weather")
)
FETCH = WEATHER_STEPS[0]


def kma_env(kma: FakeKma, run_at: str) -> dict[str, str]:
    """What the crawling_weather fetch task adds to the command's environment."""
    return {"KMA_SERVICE_KEY": kma.key, "KMA_BASE_URL": kma.base_url, "WEATHER_RUN_AT": run_at}


def test_kill_during_weather_fetch_changes_no_stored_data_and_next_fetch_succeeds(
    model_repo: Path,
) -> None:
    raw_dir = model_repo / "output" / "weather" / "raw"
    # The answer is held 60 s: longer than any wait below for the kill, shorter than the
    # session (the fake's handler thread then writes to a closed socket, harmlessly).
    with FakeKma(delay=60) as kma:
        # One hourly run stored and committed an issuance.
        for step in WEATHER_STEPS:
            run_writer(model_repo, *step, env=kma_env(kma, BASELINE_AT))
        assert sorted(p.name for p in raw_dir.iterdir()) == ["202611251430.json"]
        before = RepoState.capture(model_repo)
        weather_lock = (model_repo / WEATHER_LOCK).read_bytes()
        status = git(model_repo, "status", "--porcelain", "--ignored")

        # The next fetch is killed while the server holds its answer.
        kma.reset()
        kma.mode = "timeout"
        fetching = start_writer(model_repo, *FETCH, env=kma_env(kma, RUN_AT))
        output = kill_when(
            fetching,
            lambda out, cmds: (
                kma.request_count > 0 and any("stages.fetch_weather" in c for c in cmds)
            ),
        )
        assert f"Running stage '{WEATHER_PIPELINE}:fetch_weather'" in output
        assert "saved" not in output

        assert RepoState.capture(model_repo) == before  # output/weather/** byte-identical
        assert (model_repo / WEATHER_LOCK).read_bytes() == weather_lock
        assert sorted(p.name for p in raw_dir.iterdir()) == ["202611251430.json"]  # no temp
        assert git(model_repo, "status", "--porcelain", "--ignored") == status
        assert_lock_free(model_repo)

        # The next run needs no cleanup: fetch, preprocess and commit the new issuance.
        kma.reset()
        started = time.monotonic()
        output = "".join(
            run_writer(model_repo, *step, env=kma_env(kma, RUN_AT)) for step in WEATHER_STEPS
        )
    assert time.monotonic() - started < 120
    assert not [m for m in LOCK_CONTENTION if m in output], output
    assert "issuance 202611251730: 60 items" in output and "saved" in output
    assert sorted(p.name for p in raw_dir.iterdir()) == [
        "202611251430.json",
        "202611251730.json",
    ]
    after = RepoState.capture(model_repo)
    raw_before = {k: v for k, v in before.weather.items() if k.startswith("raw/")}
    assert {k: after.weather[k] for k in raw_before} == raw_before  # old issuance untouched
    assert after.data != before.data and after.head == before.head  # on data/weather
    assert (model_repo / WEATHER_LOCK).read_text() == git(
        model_repo, "show", f"data/weather:{WEATHER_LOCK}"
    )
