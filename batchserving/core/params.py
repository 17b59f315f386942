"""``params.yaml``: one validated pydantic model per section.

Every error names the key, the value found and the values allowed (each field's
``description``), so a bad edit of ``params.yaml`` fails the stage with a message a
person can act on, e.g. ``params.yaml: 'train.n_estimators' = 0 is out of range;
allowed: an integer from 1 to 10000``. Unknown keys are refused too: a typo never
silently falls back to a default.

The file is read as untrusted input: at most ``MAX_PARAMS_BYTES``, its loaded structure
at most ``MAX_NODES`` values (each alias counted again wherever it is used, so a YAML
alias bomb stops here) and ``MAX_DEPTH`` levels deep, every number bounded above (the
bounds are also written in params.yaml's comments), and a bad value shown in at most
about 80 characters (``batchserving.core.excerpt``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batchserving.core.excerpt import clip, excerpt
from batchserving.core.names import PARAMS_FILE

# params.yaml is about 3 KB; far larger is not a params file.
MAX_PARAMS_BYTES = 64 * 1024
MAX_NODES = 10_000
MAX_DEPTH = 16
# numpy's seeds (and so scikit-learn's random_state) are 32-bit.
MAX_SEED = 2**32 - 1


class ParamsError(ValueError):
    """A value in params.yaml is missing or outside what the stage accepts."""


# pydantic error types -> how the message describes the problem.
_WRONG_TYPE = {"int_type", "float_type", "string_type", "bool_type", "none_required"}
_OUT_OF_RANGE = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_OUT_OF_RANGE |= {"string_too_short", "string_too_long", "value_error", "literal_error"}
_OUT_OF_RANGE |= {"string_pattern_mismatch"}


def read_params(path: Path) -> Any:
    """The params file at ``path`` parsed, bounded in bytes and structure, or ParamsError."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_PARAMS_BYTES + 1)
    except FileNotFoundError:
        raise ParamsError(f"{path} not found: run from the repo root") from None
    except OSError as exc:
        raise ParamsError(f"{path} cannot be read ({exc.strerror})") from None
    if len(raw) > MAX_PARAMS_BYTES:
        raise ParamsError(
            f"{path} is larger than {MAX_PARAMS_BYTES} bytes: it is not a params file; "
            "restore it from git"
        )
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ParamsError(f"{path} is not UTF-8 text; restore it from git") from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an int too long to convert
        reason = clip(" ".join(str(exc).split()), 160)
        raise ParamsError(f"{path} is not valid YAML: {reason}") from None
    check_structure(path, data)
    return data


def check_structure(path: Path, data: Any) -> None:
    """Refuse a structure of more than MAX_NODES values or MAX_DEPTH levels, as used.

    Counts each value wherever it appears, so a node that YAML aliases reuse is counted
    at every use: the walk stops at MAX_NODES, long before an alias bomb is expanded.
    """
    pending = [(data, 1)]
    seen = 0
    while pending:
        node, depth = pending.pop()
        seen += 1
        if seen > MAX_NODES or depth > MAX_DEPTH:
            raise ParamsError(
                f"{path} is too deep or too large (more than {MAX_NODES} values or "
                f"{MAX_DEPTH} levels, counting every YAML alias where it is used); "
                "write the values out plainly"
            )
        if isinstance(node, Mapping):
            pending.extend((child, depth + 1) for pair in node.items() for child in pair)
        elif isinstance(node, list):
            pending.extend((child, depth + 1) for child in node)


def load_mapping(section: str, path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """The ``section`` mapping of the params file, or ParamsError."""
    path = Path(path)
    data = read_params(path)
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
        key = clip(str(error["loc"][0])) if error["loc"] else "?"
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
        return f"params.yaml: '{name}' = {excerpt(value)} {_problem(error)}; allowed: {allowed}"


def _problem(error: Mapping[str, Any]) -> str:
    """What is wrong with the value, from pydantic's error type (never its own echo)."""
    kind = error["type"]
    if kind == "finite_number":
        return "is not finite"
    if kind in _WRONG_TYPE:
        return f"has the wrong type ({type(error.get('input')).__name__})"
    if kind in _OUT_OF_RANGE:
        return "is out of range"
    return f"is not valid ({clip(str(error['msg']))})"


class TrainParams(Section):
    """``train``: the split and the forest."""

    SECTION = "train"
    random_state: int = Field(
        ge=0, le=MAX_SEED, description=f"an integer from 0 to {MAX_SEED} (numpy's seeds)"
    )
    n_estimators: int = Field(ge=1, le=10_000, description="an integer from 1 to 10000")
    max_depth: int | None = Field(
        ge=1, le=1000, description="null (unlimited) or an integer from 1 to 1000"
    )
    test_size: float = Field(
        gt=0.0, lt=1.0, description="a number strictly between 0 and 1, e.g. 0.3"
    )


class RegistryParams(Section):
    """``registry``: the git identity of the registry's commits and tags."""

    SECTION = "registry"
    git_name: str = Field(min_length=1, max_length=100, description="1 to 100 characters")
    git_email: str = Field(
        max_length=254, pattern=r"^[^@\s]+@[^@\s]+$", description="an e-mail address"
    )

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
SelectionApproval = Literal["none", "required"]
# A person answers within a working day; model_selection's dagrun_timeout (its DAG file)
# is this plus the run's other tasks, so a waiting run still ends before the next day's.
MAX_APPROVAL_MINUTES = 1200


class SelectionParams(Section):
    """``selection``: the champion/challenger rule (see batchserving.selection.rule)."""

    SECTION = "selection"
    primary_metric: PrimaryMetric = Field(
        default="f1_macro", description="f1_macro or accuracy (a number in metrics.json)"
    )
    min_improvement: float = Field(
        default=0.0, ge=0.0, le=1.0, description="a number >= 0 and <= 1, e.g. 0.0"
    )
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
    approval: SelectionApproval = Field(
        default="none",
        description="none (a promote verdict promotes) or required (a person approves it in "
        "Airflow first; reject or no answer keeps the champion)",
    )
    approval_timeout_minutes: float = Field(
        default=720,
        gt=0,
        le=MAX_APPROVAL_MINUTES,
        description=f"minutes > 0, at most {MAX_APPROVAL_MINUTES} (no answer by then keeps)",
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
    backoff_seconds: float = Field(ge=0, le=60, description="seconds from 0 to 60")
    backoff_max_seconds: float = Field(ge=0, le=300, description="seconds from 0 to 300")
    connect_timeout_seconds: float = Field(gt=0, le=60, description="seconds > 0, at most 60")
    read_timeout_seconds: float = Field(gt=0, le=120, description="seconds > 0, at most 120")
    # The whole request, body included: a server sending a byte per read timeout is cut here.
    request_deadline_seconds: float = Field(gt=0, le=300, description="seconds > 0, at most 300")
    step_back_limit: int = Field(ge=0, le=72, description="an integer from 0 to 72")


class InferenceParams(Section):
    """``inference``: scheduled sample size and large-batch chunking."""

    SECTION = "inference"
    n_samples: int = Field(ge=1, le=100_000, description="an integer from 1 to 100000")
    chunk_rows: int = Field(ge=1_000, le=10_000_000, description="an integer from 1000 to 10000000")
    n_jobs: int = Field(
        ge=1, le=64, description="an integer from 1 to 64 (threads of the forest's predict)"
    )


class MonitoringParams(Section):
    """``monitoring``: what a day of served rows is checked with (batchserving.monitoring)."""

    SECTION = "monitoring"
    false_alarm_rate: float = Field(
        gt=0.0, lt=0.5, description="a number strictly between 0 and 0.5, e.g. 0.05"
    )
    max_sample_rows: int = Field(
        ge=100, le=10_000_000, description="an integer from 100 to 10000000"
    )
    min_rows: int = Field(ge=1, le=100_000, description="an integer from 1 to 100000")
    min_labelled_rows: int = Field(ge=1, le=100_000, description="an integer from 1 to 100000")
    max_files: int = Field(ge=1, le=100_000, description="an integer from 1 to 100000")
    read_chunk_rows: int = Field(
        ge=1_000, le=10_000_000, description="an integer from 1000 to 10000000"
    )
