"""Prediction files shared through the DVC remote: what is put, and what the monitor takes back.

A real DVC repo (``dvc init --no-scm``) whose default remote is a directory; what the
remote holds is what anyone with write access to it could have put there, so the fetch
takes only the day's names, within the bounds, and nothing outside the predictions folder.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from batchserving.monitoring.days import DayError
from batchserving.registry.git import RegistryError
from batchserving.serving import shared
from batchserving.serving.shared import fetch_served_day, share_prediction

DAY = date(2026, 3, 1)  # KST: 2026-02-28T15:00Z .. 2026-03-01T15:00Z
IN_DAY = ("2026-02-28/2026-02-28T15-00-00Z.csv", "2026-03-01/2026-03-01T14-55-00.412000Z.csv")
DVC = [sys.executable, "-m", "dvc"]


def dvc_repo(root: Path, remote: Path | None) -> Path:
    root.mkdir()
    subprocess.run([*DVC, "init", "--no-scm", "-q"], cwd=root, check=True)
    if remote is not None:
        subprocess.run([*DVC, "remote", "add", "-d", "r", str(remote)], cwd=root, check=True)
    return root


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return tmp_path / "remote"


@pytest.fixture
def repo(tmp_path: Path, remote: Path) -> Path:
    return dvc_repo(tmp_path / "repo", remote)


def on_remote(remote: Path, name: str, text: str = "x\n") -> Path:
    path = remote / "served/predictions" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fetched_names(repo: Path) -> list[str]:
    root = repo / "output/predictions"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_a_prediction_and_its_labels_are_put_under_served(repo: Path, remote: Path) -> None:
    output = repo / "output/predictions/2026-03-01/2026-03-01T00-05-00Z.csv"
    output.parent.mkdir(parents=True)
    output.write_text("a\n")
    output.with_name("2026-03-01T00-05-00Z.labels.csv").write_text("row,species\n")
    shared = share_prediction(repo, output.relative_to(repo))
    assert shared.put == [
        "2026-03-01/2026-03-01T00-05-00Z.csv",
        "2026-03-01/2026-03-01T00-05-00Z.labels.csv",
    ]
    assert (shared.pending, shared.error) == (0, None)
    assert (remote / "served/predictions" / shared.put[0]).read_text() == "a\n"


def written(repo: Path, name: str) -> Path:
    output = repo / "output/predictions" / name
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(name + "\n")
    return output


def test_a_remote_that_fails_leaves_the_file_pending_for_the_next_run(
    repo: Path, remote: Path
) -> None:
    remote.parent.mkdir(exist_ok=True)
    remote.write_text("not a directory")  # every put under it fails
    first = share_prediction(repo, written(repo, IN_DAY[0]))
    assert first.put == [] and first.pending == 1
    assert "could not put predictions on the DVC remote 'r'" in first.error
    remote.unlink()  # the remote is back
    second = share_prediction(repo, written(repo, IN_DAY[1]))
    assert (second.put, second.pending, second.error) == (list(IN_DAY), 0, None)
    for name in IN_DAY:
        assert (remote / "served/predictions" / name).read_text() == name + "\n"
    assert list((repo / ".dvc/tmp/unshared-predictions").iterdir()) == []


def test_a_file_outside_the_predictions_folder_is_not_shared(repo: Path, remote: Path) -> None:
    elsewhere = repo / "scores.csv"
    elsewhere.write_text("a\n")
    assert share_prediction(repo, elsewhere).put == []
    assert not remote.exists()


def test_without_a_remote_nothing_is_shared_or_fetched(tmp_path: Path) -> None:
    repo = dvc_repo(tmp_path / "alone", None)
    output = repo / "output/predictions/2026-03-01/2026-03-01T00-05-00Z.csv"
    output.parent.mkdir(parents=True)
    output.write_text("a\n")
    assert share_prediction(repo, output).put == []
    assert fetch_served_day(repo, repo / "output/predictions", DAY, 10).fetched == []


def test_only_the_days_files_and_their_labels_come_back(repo: Path, remote: Path) -> None:
    for name in IN_DAY:
        on_remote(remote, name)
    on_remote(remote, "2026-03-01/2026-03-01T14-55-00.412000Z.labels.csv")
    on_remote(remote, "2026-03-01/2026-03-01T15-00-00Z.csv")  # the next KST day
    on_remote(remote, "2026-02-28/2026-02-28T14-55-00Z.csv")  # the day before
    on_remote(remote, "2026-03-01/2026-03-01T15-00-00Z.labels.csv")  # labels of another day
    on_remote(remote, "2026-03-01/notes.sh")
    on_remote(remote, "2026-03-01/2026-03-01T00-00-00Z.csv.sh")
    (remote / "served/predictions/2026-03-01/2026-03-01T01-00-00Z.csv").mkdir()  # not a file
    on_remote(remote, "2026-03-01/deeper/2026-03-01T02-00-00Z.csv")

    found = fetch_served_day(repo, repo / "output/predictions", DAY, 10)

    expected = sorted([*IN_DAY, "2026-03-01/2026-03-01T14-55-00.412000Z.labels.csv"])
    assert fetched_names(repo) == expected
    assert len(found.fetched) == 3 and found.skipped == []


def test_a_file_already_here_is_not_fetched_again(repo: Path, remote: Path) -> None:
    on_remote(remote, IN_DAY[0], "same\n")
    first = fetch_served_day(repo, repo / "output/predictions", DAY, 10)
    again = fetch_served_day(repo, repo / "output/predictions", DAY, 10)
    assert (len(first.fetched), len(again.fetched), len(again.present)) == (1, 0, 1)


def test_more_files_than_allowed_is_refused_and_nothing_is_fetched(
    repo: Path, remote: Path
) -> None:
    for minute in range(0, 30, 5):
        on_remote(remote, f"2026-03-01/2026-03-01T00-{minute:02d}-00Z.csv")
    with pytest.raises(DayError, match=r"more than 5 shared prediction files.*max_files"):
        fetch_served_day(repo, repo / "output/predictions", DAY, 5)
    assert not (repo / "output/predictions").exists()


def test_a_file_over_the_size_bound_is_named_and_not_fetched(
    repo: Path, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "MAX_FILE_BYTES", 100)
    on_remote(remote, IN_DAY[0], "x" * 101)
    on_remote(remote, IN_DAY[1], "x" * 100)
    found = fetch_served_day(repo, repo / "output/predictions", DAY, 10)
    assert fetched_names(repo) == [IN_DAY[1]]
    [skipped] = found.skipped
    assert skipped["file"].endswith(IN_DAY[0]) and "101 bytes on the remote" in skipped["reason"]


def test_a_broken_remote_is_a_clear_error_naming_it(repo: Path, remote: Path) -> None:
    remote.parent.mkdir(exist_ok=True)
    remote.write_text("not a directory")  # every listing under it fails
    with pytest.raises(RegistryError, match=r"the DVC remote 'r' \(.*\).*dvc remote list"):
        fetch_served_day(repo, repo / "output/predictions", DAY, 10)
