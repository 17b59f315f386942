"""params.yaml is read as untrusted input: every key checked, every number bounded, every
error short.

Each section parses into its pydantic model or fails with one line naming the key and the
values it allows. The file, its structure and each value are bounded before a stage uses
them: a seed numpy cannot take, a thread count or a timeout of a billion, a file of
megabytes or a YAML alias bomb each give one short line naming the key, never a traceback
or an echo of the whole value.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import annotated_types
import pytest

from batchserving.core.params import (
    MAX_PARAMS_BYTES,
    InferenceParams,
    MonitoringParams,
    ParamsError,
    RegistryParams,
    Section,
    SelectionParams,
    TrainParams,
    WeatherParams,
    load_mapping,
)
from batchserving.training.iris import split_rows
from stages.prepare import iris_frame
from stages.train import fit_model
from tests.unit.conftest import GOOD_TRAIN, PROJECT_PARAMS, write_params

SECTIONS: list[type[Section]] = [
    TrainParams,
    RegistryParams,
    SelectionParams,
    WeatherParams,
    InferenceParams,
    MonitoringParams,
]
# Room for the key, the words around the value and the allowed values; the value itself
# is cut to about 80 characters.
SHORT_ERROR = 400


def project_section(section: type[Section]) -> dict:
    """The section as the project's params.yaml sets it (valid by construction)."""
    return load_mapping(section.SECTION, PROJECT_PARAMS)


def numeric_fields(section: type[Section]) -> list[str]:
    return [
        name
        for name, field in section.model_fields.items()
        if any(kind in (int, float) for kind in _types(field.annotation))
    ]


def _types(annotation: object) -> tuple:
    return getattr(annotation, "__args__", (annotation,))


def upper_bound(section: type[Section], key: str) -> float | None:
    for rule in section.model_fields[key].metadata:
        if isinstance(rule, annotated_types.Le):
            return rule.le
        if isinstance(rule, annotated_types.Lt):
            return rule.lt
    return None


def test_good_params_parse() -> None:
    assert TrainParams.from_mapping(GOOD_TRAIN) == TrainParams(
        random_state=42, n_estimators=10, max_depth=3, test_size=0.3
    )
    assert TrainParams.from_mapping({**GOOD_TRAIN, "max_depth": None}).max_depth is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("n_estimators", -1, "'train.n_estimators' = -1 is out of range; allowed: an integer"),
        ("n_estimators", 0, "'train.n_estimators' = 0 is out of range"),
        ("n_estimators", "100", "'train.n_estimators' = '100' has the wrong type (str)"),
        ("n_estimators", True, "'train.n_estimators' = True has the wrong type (bool)"),
        ("n_estimators", 2.5, "'train.n_estimators' = 2.5 has the wrong type (float)"),
        ("test_size", 0.0, "'train.test_size' = 0.0 is out of range; allowed: a number strictly"),
        ("test_size", 1.0, "'train.test_size' = 1.0 is out of range"),
        ("test_size", 1.5, "'train.test_size' = 1.5 is out of range"),
        ("test_size", float("nan"), "'train.test_size' = nan is not finite"),
        ("max_depth", 0, "'train.max_depth' = 0 is out of range; allowed: null (unlimited)"),
        ("random_state", -5, "'train.random_state' = -5 is out of range"),
    ],
)
def test_bad_params_name_the_key_and_allowed_values(key: str, value: object, message: str) -> None:
    with pytest.raises(ParamsError) as excinfo:
        TrainParams.from_mapping({**GOOD_TRAIN, key: value})
    assert message in str(excinfo.value)


def test_missing_key_is_named() -> None:
    params = {k: v for k, v in GOOD_TRAIN.items() if k != "test_size"}
    with pytest.raises(ParamsError, match=r"'train.test_size' is missing; allowed: a number"):
        TrainParams.from_mapping(params)


def test_params_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    with pytest.raises(ParamsError, match="not found"):
        load_mapping("train", path)
    path.write_text("train: [1, 2\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_mapping("train", path)
    path.write_text("other: {}\n")
    with pytest.raises(ParamsError, match="section 'train' is missing"):
        load_mapping("train", path)


def test_registry_identity_is_validated() -> None:
    ident = RegistryParams.from_mapping({"git_name": "Bot", "git_email": "bot@example.invalid"})
    assert ident.git_env()["GIT_COMMITTER_EMAIL"] == "bot@example.invalid"
    with pytest.raises(ParamsError, match="registry.git_email"):
        RegistryParams.from_mapping({"git_name": "Bot", "git_email": "nobody"})


def test_selection_params_defaults():
    params = SelectionParams.from_mapping({})
    assert (params.primary_metric, params.min_improvement) == ("f1_macro", 0.0)
    assert (params.test, params.alpha, params.min_score) == ("mcnemar", 0.05, 0.8)
    # No approval step unless asked for: a promote verdict promotes, as before.
    assert (params.approval, params.approval_timeout_minutes) == ("none", 720)


@pytest.mark.parametrize(
    ("values", "key", "allowed"),
    [
        ({"test": "ttest"}, "selection.test", "mcnemar"),
        ({"test": "ttest"}, "selection.test", "bootstrap"),
        ({"alpha": 0.0}, "selection.alpha", "strictly between 0 and 1"),
        ({"alpha": 1.0}, "selection.alpha", "strictly between 0 and 1"),
        ({"min_score": -0.1}, "selection.min_score", "from 0 to 1"),
        ({"min_score": 1.5}, "selection.min_score", "from 0 to 1"),
        ({"min_improvement": -0.1}, "selection.min_improvement", ">= 0"),
        ({"primary_metric": ""}, "selection.primary_metric", "f1_macro or accuracy"),
        ({"approval": "yes"}, "selection.approval", "or required"),
        ({"approval_timeout_minutes": 0}, "selection.approval_timeout_minutes", "at most 1200"),
        ({"approval_timeout_minutes": -5}, "selection.approval_timeout_minutes", "minutes > 0"),
    ],
)
def test_selection_params_errors_name_the_key_and_the_allowed_values(values, key, allowed):
    with pytest.raises(ParamsError, match=key) as info:
        SelectionParams.from_mapping(values)
    assert allowed in str(info.value)


@pytest.mark.parametrize(
    ("section", "key"),
    [(section, key) for section in SECTIONS for key in numeric_fields(section)],
    ids=lambda item: item if isinstance(item, str) else item.SECTION,
)
def test_every_number_has_an_upper_bound_that_is_enforced(section: type[Section], key: str) -> None:
    bound = upper_bound(section, key)
    assert bound is not None, f"{section.SECTION}.{key} has no upper bound"
    good = project_section(section)
    too_big = bound + 1 if isinstance(bound, int) else bound * 2 + 1
    with pytest.raises(ParamsError, match=rf"'{section.SECTION}.{key}' = .* is out of range"):
        section.from_mapping({**good, key: too_big})
    section.from_mapping({**good, key: bound if isinstance(bound, int) else bound * 0.999})


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        (TrainParams, "random_state", 2**40),  # numpy's seeds stop at 2**32 - 1
        (TrainParams, "max_depth", 10**9),
        (SelectionParams, "min_improvement", 5.0),  # metrics are in [0, 1]
        (WeatherParams, "num_of_rows", 10**9),
        (WeatherParams, "backoff_seconds", 1e9),
        (WeatherParams, "backoff_max_seconds", 1e9),
        (WeatherParams, "connect_timeout_seconds", 1e9),
        (WeatherParams, "read_timeout_seconds", 1e9),
        (InferenceParams, "n_jobs", 10**6),
    ],
)
def test_values_past_what_the_code_can_take_are_refused(
    section: type[Section], key: str, value: float
) -> None:
    with pytest.raises(ParamsError, match=rf"'{section.SECTION}.{key}' = .* is out of range"):
        section.from_mapping({**project_section(section), key: value})


def test_the_largest_seed_allowed_is_one_numpy_takes() -> None:
    params = TrainParams.from_mapping({**project_section(TrainParams), "random_state": 2**32 - 1})
    train, _ = split_rows(iris_frame(), params.test_size, params.random_state)
    assert fit_model(train, params).n_estimators == params.n_estimators


def test_every_bound_is_documented_in_params_yaml() -> None:
    """Each numeric key's comment in params.yaml names its upper bound, as the code has it."""
    lines = PROJECT_PARAMS.read_text(encoding="utf-8").splitlines()
    for section in SECTIONS:
        for key in numeric_fields(section):
            [line] = [ln for ln in lines if ln.strip().startswith(f"{key}:")]
            comment = line.partition("#")[2].replace("_", "")
            numbers = {float(n) for n in re.findall(r"\d+(?:\.\d+)?(?:e\d+)?", comment)}
            assert upper_bound(section, key) in numbers, (key, line)


ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
train:
  random_state: [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  n_estimators: 10
  max_depth: 3
  test_size: 0.3
"""


def test_a_yaml_alias_bomb_gives_a_short_error_quickly(tmp_path: Path) -> None:
    path = write_params(tmp_path, ALIAS_BOMB)
    assert path.stat().st_size < 600
    started = time.monotonic()
    with pytest.raises(ParamsError) as excinfo:
        TrainParams.load(path)
    seconds = time.monotonic() - started
    message = str(excinfo.value)
    assert len(message) < SHORT_ERROR, message[:SHORT_ERROR]
    assert "\n" not in message
    assert "params.yaml" in message and "too deep or too large" in message
    assert seconds < 1.0


def test_a_params_file_above_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    padding = "# " + "x" * 78 + "\n"
    text = PROJECT_PARAMS.read_text(encoding="utf-8")
    path = write_params(tmp_path, text + padding * (MAX_PARAMS_BYTES // len(padding) + 1))
    with pytest.raises(ParamsError, match=rf"is larger than {MAX_PARAMS_BYTES} bytes"):
        TrainParams.load(path)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        (TrainParams, "random_state", "9" * 100_000),  # the wrong type
        (TrainParams, "n_estimators", 10**5000),  # out of range, and a huge number
        (RegistryParams, "git_name", "x" * 100_000),  # too long
        (RegistryParams, "git_email", "a" * 100_000 + "@example.invalid"),
        (SelectionParams, "test", "y" * 100_000),  # not one of the choices
        (InferenceParams, "n_samples", [[1] * 1000] * 1000),
    ],
    ids=["long-string", "huge-int", "long-name", "long-email", "bad-choice", "big-list"],
)
def test_an_error_shows_at_most_about_80_characters_of_the_value(
    section: type[Section], key: str, value: object
) -> None:
    with pytest.raises(ParamsError, match=rf"'{section.SECTION}.{key}' = ") as excinfo:
        section.from_mapping({**project_section(section), key: value})
    message = str(excinfo.value)
    assert len(message) < SHORT_ERROR, message[:SHORT_ERROR]
    shown = message.split(" = ", 1)[1]
    assert len(shown.split(" is ")[0].split(" has ")[0]) <= 90, message


def test_a_number_too_long_to_parse_gives_a_short_error(tmp_path: Path) -> None:
    """Python refuses to parse an integer of more than 4300 digits; the error stays ours."""
    text = PROJECT_PARAMS.read_text(encoding="utf-8")
    path = write_params(tmp_path, text.replace("random_state: 42", "random_state: " + "9" * 5000))
    with pytest.raises(ParamsError) as excinfo:
        TrainParams.load(path)
    assert len(str(excinfo.value)) < SHORT_ERROR, str(excinfo.value)[:SHORT_ERROR]
