"""``params.yaml``: one validated pydantic model per section.

Every error names the key, the value found and the values allowed (each field's
``description``), so a bad edit of ``params.yaml`` fails the stage with a message a
person can act on, e.g. ``params.yaml: 'train.n_estimators' = 0 is out of range;
allowed: an integer from 1 to 10000``. Unknown keys are refused too: a typo never
silently falls back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batchserving.core.names import PARAMS_FILE


class ParamsError(ValueError):
    """A value in params.yaml is missing or outside what the stage accepts."""


# pydantic error types -> how the message describes the problem.
_WRONG_TYPE = {"int_type", "float_type", "string_type", "bool_type", "none_required"}
_OUT_OF_RANGE = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_OUT_OF_RANGE |= {"string_too_short", "value_error", "literal_error", "string_pattern_mismatch"}


def load_mapping(section: str, path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """The ``section`` mapping of the params file, or ParamsError."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path} not found: run from the repo root") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get(section), Mapping):
        raise ParamsError(f"{path}: section '{section}' is missing or not a mapping")
    return dict(data[section])


class Section(BaseModel):
    """A section of params.yaml; subclasses set ``SECTION`` and describe each field."""

    SECTION: ClassVar[str]
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        """Validate ``values``; raise ParamsError naming the key and the allowed values."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise ParamsError(cls._describe(exc.errors()[0])) from None

    @classmethod
    def load(cls, path: str | Path = PARAMS_FILE) -> Self:
        """The validated section of the params file at ``path``."""
        return cls.from_mapping(load_mapping(cls.SECTION, path))

    @classmethod
    def _describe(cls, error: Mapping[str, Any]) -> str:
        key = str(error["loc"][0]) if error["loc"] else "?"
        name = f"{cls.SECTION}.{key}"
        field = cls.model_fields.get(key)
        allowed = (
            field.description if field is not None else f"the keys {', '.join(cls.model_fields)}"
        )
        value = error.get("input")
        kind = error["type"]
        if kind == "missing":
            return f"params.yaml: '{name}' is missing; allowed: {allowed}"
        if kind == "extra_forbidden":
            return f"params.yaml: '{name}' is not a known key; allowed: {allowed}"
        if kind == "finite_number":
            return f"params.yaml: '{name}' = {value!r} is not finite; allowed: {allowed}"
        if kind in _WRONG_TYPE:
            return (
                f"params.yaml: '{name}' = {value!r} has the wrong type "
                f"({type(value).__name__}); allowed: {allowed}"
            )
        if kind in _OUT_OF_RANGE:
            return f"params.yaml: '{name}' = {value!r} is out of range; allowed: {allowed}"
        return (
            f"params.yaml: '{name}' = {value!r} is not valid ({error['msg']}); allowed: {allowed}"
        )


class TrainParams(Section):
    """``train``: the split and the forest."""

    SECTION = "train"
    random_state: int = Field(ge=0, description="an integer >= 0")
    n_estimators: int = Field(ge=1, le=10_000, description="an integer from 1 to 10000")
    max_depth: int | None = Field(ge=1, description="null (unlimited) or an integer >= 1")
    test_size: float = Field(
        gt=0.0, lt=1.0, description="a number strictly between 0 and 1, e.g. 0.3"
    )


class RegistryParams(Section):
    """``registry``: the git identity of the registry's commits and tags."""

    SECTION = "registry"
    git_name: str = Field(min_length=1, description="a non-empty string")
    git_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="an e-mail address")

    def git_env(self) -> dict[str, str]:
        """Git's identity variables; they win over any user or global git config."""
        return {
            "GIT_AUTHOR_NAME": self.git_name,
            "GIT_AUTHOR_EMAIL": self.git_email,
            "GIT_COMMITTER_NAME": self.git_name,
            "GIT_COMMITTER_EMAIL": self.git_email,
        }


# The gate's choices, named once: the params model and the statistics both read them.
PrimaryMetric = Literal["f1_macro", "accuracy"]
SelectionTest = Literal["mcnemar", "bootstrap", "none"]


class SelectionParams(Section):
    """``selection``: the champion/challenger rule (see batchserving.selection.rule)."""

    SECTION = "selection"
    primary_metric: PrimaryMetric = Field(
        default="f1_macro", description="f1_macro or accuracy (a number in metrics.json)"
    )
    min_improvement: float = Field(default=0.0, ge=0.0, description="a number >= 0, e.g. 0.0")
    test: SelectionTest = Field(
        default="mcnemar",
        description="mcnemar (exact test on the discordant rows), bootstrap (paired interval "
        "of the delta) or none (point estimates only)",
    )
    alpha: float = Field(
        default=0.05, gt=0.0, lt=1.0, description="a number strictly between 0 and 1, e.g. 0.05"
    )
    min_score: float = Field(
        default=0.8, ge=0.0, le=1.0, description="a number from 0 to 1, e.g. 0.8"
    )


class WeatherParams(Section):
    """``weather``: where and how the KMA client asks for the forecast."""

    SECTION = "weather"
    base_url: str = Field(pattern=r"^https?://", description="an http(s) URL")
    nx: int = Field(ge=1, le=149, description="a grid x from 1 to 149")
    ny: int = Field(ge=1, le=253, description="a grid y from 1 to 253")
    # One issuance is 60 rows; a page of 1000 stays far under the client's body cap.
    num_of_rows: int = Field(ge=60, le=1000, description="an integer from 60 to 1000")
    retries: int = Field(ge=0, le=10, description="an integer from 0 to 10")
    backoff_seconds: float = Field(ge=0, le=300, description="seconds from 0 to 300")
    backoff_max_seconds: float = Field(ge=0, le=300, description="seconds from 0 to 300")
    connect_timeout_seconds: float = Field(gt=0, le=120, description="seconds > 0, at most 120")
    read_timeout_seconds: float = Field(gt=0, le=120, description="seconds > 0, at most 120")
    # The whole request, body included: a server sending a byte per read timeout is cut here.
    request_deadline_seconds: float = Field(gt=0, le=300, description="seconds > 0, at most 300")
    step_back_limit: int = Field(ge=0, le=72, description="an integer from 0 to 72")


class InferenceParams(Section):
    """``inference``: scheduled sample size and large-batch chunking."""

    SECTION = "inference"
    n_samples: int = Field(ge=1, le=100_000, description="an integer from 1 to 100000")
    chunk_rows: int = Field(ge=1_000, le=10_000_000, description="an integer from 1000 to 10000000")
    n_jobs: int = Field(ge=1, description="an integer >= 1 (threads used by the forest's predict)")
