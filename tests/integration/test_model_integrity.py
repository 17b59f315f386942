"""A model is unpickled only if its md5 is the one its version pins, on every path that loads one.

The attack: whoever can write the DVC remote (or the cache, or ``output/serving``) puts a
pickle there whose unpickling runs code. Here that code writes a marker file; every test
asserts the marker never appears and that the step names the pinned and the actual md5.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import stat
from pathlib import Path

import pytest

from batchserving.registry.dvclock import model_hash
from tests.conftest import PROMOTE, git, last_line, locked_task, set_params

# Training params whose forest gets one more test row right than the default's; with
# `selection.test: none` the comparison promotes it (as in test_model_selection).
ONE_ROW_BETTER = {"n_estimators": 10, "max_depth": 4, "test_size": 0.3}
PREDICT = ("python", "-m", "batchserving.serving.predict", "--refresh")
PREDICT_DATE = ("--logical-date", "2026-03-01T09:25:00+00:00")


class _Payload:
    """Unpickling this calls ``exec`` on code that writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.code = f"open({str(marker)!r}, 'w').write('pwned')"

    def __reduce__(self):
        return (exec, (self.code,))


def malicious_pickle(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker))


def md5_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def pinned(repo: Path, rev: str) -> str:
    md5 = model_hash(git(repo, "show", f"{rev}:dvc.lock"))
    assert md5, rev
    return md5


def object_paths(repo: Path, md5: str) -> list[Path]:
    """Where DVC keeps the object ``md5``: the workspace cache and the default remote."""
    rel = Path("files", "md5", md5[:2], md5[2:])
    paths = [repo / ".dvc" / "cache" / rel, repo / "dvc-remote" / rel]
    assert all(p.is_file() for p in paths), paths
    return paths


def tamper(repo: Path, md5: str, payload: bytes) -> None:
    """Replace the object ``md5`` in the cache and the remote (DVC makes them read-only)."""
    for path in object_paths(repo, md5):
        path.chmod(stat.S_IWUSR | stat.S_IRUSR)
        path.write_bytes(payload)


def register_challenger(repo: Path) -> str:
    """Register v0.0.2 (better by one test row) and return its comparison, which promotes it."""
    set_params(repo, "train", **ONE_ROW_BETTER)
    set_params(repo, "selection", test="none")
    locked_task(repo, "python", "-m", "batchserving.registry.publish", "evaluate")
    locked_task(repo, "python", "-m", "batchserving.registry.register")
    return last_line(locked_task(repo, "python", "-m", "batchserving.selection.compare").stdout)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "marker"
    yield path
    assert not path.exists(), "a tampered model was unpickled"


def assert_refused(result, expected: str, actual: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"pins {expected}" in output and f"md5 {actual}" in output, output
    assert "Traceback" not in output, output


def test_redeploy_refuses_a_tampered_prod_model(promoted_repo: Path, marker: Path) -> None:
    repo = promoted_repo
    md5 = pinned(repo, "iris-model@v0.0.1")
    payload = malicious_pickle(marker)
    tamper(repo, md5, payload)
    shutil.rmtree(repo / "output" / "serving")

    result = locked_task(
        repo, "python", "-m", "batchserving.selection.promote", "redeploy", check=False
    )
    assert_refused(result, md5, md5_of(payload))
    assert not (repo / "output" / "serving" / "model.json").exists()


def test_inference_refuses_a_tampered_model_and_keeps_nothing_unverified(
    promoted_repo: Path, marker: Path
) -> None:
    repo = promoted_repo
    md5 = pinned(repo, "iris-model@v0.0.1")
    payload = malicious_pickle(marker)
    serving = repo / "output" / "serving"
    tamper(repo, md5, payload)

    # The same file put into the serving cache: never loaded, refetched from the
    # (tampered) cache and remote and refused there too.
    (serving / f"model-{md5}.joblib").write_bytes(payload)
    result = locked_task(repo, *PREDICT, *PREDICT_DATE, check=False)
    assert_refused(result, md5, md5_of(payload))
    assert not (repo / "output" / "predictions").exists()

    # The record rewritten to name the payload's md5 (as a deploy of an unchecked file
    # once wrote it): with --refresh the pin is checked, so it is refetched and refused.
    record = json.loads((serving / "model.json").read_text())
    (serving / f"model-{md5_of(payload)}.joblib").write_bytes(payload)
    (serving / "model.json").write_text(json.dumps({**record, "model_md5": md5_of(payload)}))
    result = locked_task(repo, *PREDICT, *PREDICT_DATE, check=False)
    assert "pins " + md5 in result.stdout + result.stderr
    assert not (repo / "output" / "predictions").exists()


def test_inference_keeps_its_last_verified_model_when_the_new_prod_is_tampered(
    promoted_repo: Path, marker: Path
) -> None:
    repo = promoted_repo
    comparison = register_challenger(repo)
    new_md5 = pinned(repo, "iris-model@v0.0.2")
    # Promote v0.0.2 on a worker whose serving cache still holds v0.0.1, then tamper
    # v0.0.2's object before that worker's next inference fetches it.
    served_before = (repo / "output" / "serving" / "model.json").read_bytes()
    locked_task(repo, *PROMOTE, comparison)
    assert json.loads((repo / "output" / "serving" / "model.json").read_text())["version"] == (
        "v0.0.2"
    )
    (repo / "output" / "serving" / "model.json").write_bytes(served_before)
    tamper(repo, new_md5, malicious_pickle(marker))

    result = locked_task(repo, *PREDICT, *PREDICT_DATE)
    assert f"pins {new_md5}" in result.stderr
    assert "serving the cached deployment, iris-model v0.0.1" in result.stderr
    rows = (repo / "output/predictions/2026-03-01/2026-03-01T09-25-00Z.csv").read_text()
    assert '"v0.0.1"' in rows and "v0.0.2" not in rows


def test_compare_refuses_a_tampered_champion_or_challenger(
    promoted_repo: Path, marker: Path
) -> None:
    repo = promoted_repo
    register_challenger(repo)
    payload = malicious_pickle(marker)
    compare = ("python", "-m", "batchserving.selection.compare")

    champion_md5 = pinned(repo, "iris-model@v0.0.1")
    good_champion = object_paths(repo, champion_md5)[0].read_bytes()
    tamper(repo, champion_md5, payload)
    assert_refused(locked_task(repo, *compare, check=False), champion_md5, md5_of(payload))

    # The champion restored; the workspace's challenger model file replaced.
    tamper(repo, champion_md5, good_champion)
    challenger = repo / "output" / "model" / "model.joblib"
    challenger_md5 = pinned(repo, "iris-model@v0.0.2")
    challenger.unlink()
    challenger.write_bytes(payload)
    assert_refused(locked_task(repo, *compare, check=False), challenger_md5, md5_of(payload))


def test_promote_and_rollback_refuse_a_tampered_model_and_assign_nothing(
    promoted_repo: Path, marker: Path
) -> None:
    repo = promoted_repo
    comparison = register_challenger(repo)
    assert json.loads(comparison)["decision"] == "promote"
    new_md5 = pinned(repo, "iris-model@v0.0.2")
    payload = malicious_pickle(marker)
    tamper(repo, new_md5, payload)
    tags_before = git(repo, "tag", "--list")
    serving_before = (repo / "output" / "serving" / "model.json").read_bytes()

    assert_refused(locked_task(repo, *PROMOTE, comparison, check=False), new_md5, md5_of(payload))
    rollback = ("python", "-m", "batchserving.selection.promote", "rollback", "v0.0.2")
    assert_refused(locked_task(repo, *rollback, check=False), new_md5, md5_of(payload))

    assert git(repo, "tag", "--list") == tags_before
    assert (repo / "output" / "serving" / "model.json").read_bytes() == serving_before
