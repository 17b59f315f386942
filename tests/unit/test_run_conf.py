"""A trigger's run conf reaches no path outside the model repo (inputs) or the predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchserving.serving.run_conf import RunConfError, confined_paths, parse_run_conf

SECRET = "password=hunter2-do-not-show"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A model repo with a batch file, and a sibling folder it must not reach."""
    repo, outside = tmp_path / "repo", tmp_path / "other_team"
    (repo / "data").mkdir(parents=True)
    (repo / "data/batch.csv").write_text("sepal_length\n1\n")
    outside.mkdir()
    (outside / "creds.csv").write_text(f"{SECRET}\n")
    return repo, outside


def confine(repo: Path, **conf: str) -> tuple[Path | None, Path | None]:
    return confined_paths(repo, parse_run_conf(json.dumps(conf)))


def test_inputs_inside_the_repo_and_outputs_under_predictions_are_taken(layout) -> None:
    repo, _ = layout
    (repo / "more").symlink_to(repo / "data")  # a link that stays inside is fine
    source, target = confine(
        repo, input_path="more/batch.csv", output_path="output/predictions/batch/scored.parquet"
    )
    assert source == (repo / "data/batch.csv").resolve()
    assert target == repo.resolve() / "output/predictions/batch/scored.parquet"
    assert confine(repo) == (None, None)  # an empty conf: the scheduled run


REFUSED_INPUTS = {
    "absolute": lambda repo, outside: str(outside / "creds.csv"),
    "dot-dot": lambda repo, outside: "../other_team/creds.csv",
    "dot-dot inside": lambda repo, outside: "data/../../other_team/creds.csv",
    "empty": lambda repo, outside: "",
}


@pytest.mark.parametrize("case", list(REFUSED_INPUTS))
def test_an_input_outside_the_repo_is_refused(layout, case: str) -> None:
    repo, outside = layout
    with pytest.raises(RunConfError) as error:
        confine(repo, input_path=REFUSED_INPUTS[case](repo, outside))
    assert "input_path" in str(error.value)
    assert "relative path inside the model repo" in str(error.value)
    assert SECRET not in str(error.value)


def test_an_input_through_a_symlink_leading_out_is_refused(layout) -> None:
    repo, outside = layout
    (repo / "data/shared").symlink_to(outside)
    (repo / "data/creds.csv").symlink_to(outside / "creds.csv")
    for path in ("data/shared/creds.csv", "data/creds.csv"):
        with pytest.raises(RunConfError, match="symlink"):
            confine(repo, input_path=path)


REFUSED_OUTPUTS = [
    "/tmp/new/dirs/clobber.csv",
    "output/scored/batch.csv",
    "output/predictions/../serving/model.json",
    "output/predictions",
    "output/predictions/",
    "dvc.lock",
    "output/predictionsX/a.csv",
]


@pytest.mark.parametrize("path", REFUSED_OUTPUTS)
def test_an_output_outside_the_predictions_is_refused(layout, path: str) -> None:
    repo, _ = layout
    with pytest.raises(RunConfError) as error:
        confine(repo, output_path=path)
    assert "output_path" in str(error.value) and "output/predictions/" in str(error.value)
    assert not (repo / "output").exists()


def test_an_output_through_a_symlink_leading_out_is_refused(layout) -> None:
    repo, outside = layout
    (repo / "output/predictions").mkdir(parents=True)
    (repo / "output/predictions/shared").symlink_to(outside)
    with pytest.raises(RunConfError, match="symlink"):
        confine(repo, output_path="output/predictions/shared/clobber.csv")
    (repo / "output/predictions/creds.csv").symlink_to(outside / "creds.csv")
    with pytest.raises(RunConfError, match="symlink"):
        confine(repo, output_path="output/predictions/creds.csv")
    assert (outside / "creds.csv").read_text() == f"{SECRET}\n"
    assert sorted(p.name for p in outside.iterdir()) == ["creds.csv"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"input_path": ["a.csv"]}', "input_path"),
        ('{"input_path": 7}', "input_path"),
        ('{"inptu_path": "a.csv"}', "inptu_path"),
        ("[1, 2]", "JSON object"),
        ("{not json", "JSON object"),
        (json.dumps({"input_path": "a" * 100_000 + ".csv"}), "at most"),
        (json.dumps({"input_path": "data/\0.csv"}), "input_path"),
    ],
)
def test_a_malformed_run_conf_is_refused_in_one_bounded_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(RunConfError) as error:
        confined_paths(tmp_path, parse_run_conf(text))
    message = str(error.value)
    assert expected in message and "\n" not in message
    assert len(message) < 400, message  # never the whole unbounded value
