"""A ``batch_inference`` trigger's run conf: parsed, bounded and its paths confined.

The DAG hands the run conf to ``predict --run-conf JSON``; a person's ``--input`` and
``--output`` on the command line are taken as given. A run conf is a JSON object of at
most ``MAX_CONF_CHARS`` characters with only the keys ``input_path`` and ``output_path``
(strings of at most ``MAX_PATH_CHARS``). ``input_path`` must be a relative path inside
the model repo and ``output_path`` one under ``output/predictions/`` (``.csv`` or
``.parquet``): no absolute path, no ``..``, and no symlink that leads out, checked on the
resolved path before a byte is read or a folder created. An error names the key and at
most 80 characters of the value.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batchserving.core.names import PREDICTIONS_DIR
from batchserving.serving.tables import CSV_SUFFIXES, PARQUET_SUFFIXES

MAX_CONF_CHARS = 4_096
MAX_PATH_CHARS = 1_024
INPUT_RULE = (
    "inputs from a run conf must be a relative path inside the model repo, e.g. data/batch.csv"
)
OUTPUT_RULE = (
    f"outputs from a run conf must be a .csv or .parquet file under {PREDICTIONS_DIR}/, "
    f"e.g. {PREDICTIONS_DIR}/batch/scored.parquet"
)


class RunConfError(ValueError):
    """The run conf is not what ``batch_inference`` takes, or a path in it leads out."""


class RunConf(BaseModel):
    """The keys ``batch_inference`` reads from a run conf; any other key is refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
    input_path: str | None = Field(default=None, max_length=MAX_PATH_CHARS)
    output_path: str | None = Field(default=None, max_length=MAX_PATH_CHARS)


def parse_run_conf(text: str) -> RunConf:
    """The run conf from its JSON text, or RunConfError naming the first bad key."""
    if len(text) > MAX_CONF_CHARS:
        raise RunConfError(f"the run conf is {len(text)} characters; at most {MAX_CONF_CHARS}")
    try:
        return RunConf.model_validate_json(text or "{}")
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the run conf"
        if error["type"] in ("json_invalid", "model_type"):
            raise RunConfError(f"the run conf is not a JSON object ({text[:80]!r})") from None
        if error["type"] == "extra_forbidden":
            raise RunConfError(
                f"{where[:80]!r} is not a run conf key; batch_inference takes input_path "
                "and output_path"
            ) from None
        raise RunConfError(f"{where}: {error['msg'].lower()}") from None


def _relative(key: str, text: str, rule: str) -> PurePosixPath:
    """``text`` as a relative path with no ``..`` and no control character, or RunConfError."""
    path = PurePosixPath(text)
    if (
        not text
        or path.is_absolute()
        or ".." in path.parts
        or any(ord(c) < 32 for c in text)
        or path == PurePosixPath(".")
    ):
        raise RunConfError(f"{key} {text[:80]!r} is refused: {rule}")
    return path


def confined_input(repo: Path, text: str) -> Path:
    """The input file inside ``repo`` that ``text`` names, resolved, or RunConfError."""
    path = _relative("input_path", text, INPUT_RULE)
    root = repo.resolve()
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root):
        raise RunConfError(
            f"input_path {text[:80]!r} is refused: a symlink on it leads out of the model "
            f"repo; {INPUT_RULE}"
        )
    return resolved


def confined_output(repo: Path, text: str) -> Path:
    """The output file under ``repo``'s predictions that ``text`` names, or RunConfError."""
    path = _relative("output_path", text, OUTPUT_RULE)
    below = PurePosixPath(PREDICTIONS_DIR)
    if (
        len(path.parts) <= len(below.parts)
        or path.parts[: len(below.parts)] != below.parts
        or path.suffix.lower() not in CSV_SUFFIXES + PARQUET_SUFFIXES
    ):
        raise RunConfError(f"output_path {text[:80]!r} is refused: {OUTPUT_RULE}")
    predictions = repo.resolve() / below
    # The lexical path is where the file is renamed to; resolving it shows where a symlink
    # on the way (a folder, or the file itself) would send the bytes.
    target = repo.resolve() / path
    if not target.resolve().is_relative_to(predictions):
        raise RunConfError(
            f"output_path {text[:80]!r} is refused: a symlink on it leads out of "
            f"{PREDICTIONS_DIR}/; {OUTPUT_RULE}"
        )
    return target


def confined_paths(repo: Path, conf: RunConf) -> tuple[Path | None, Path | None]:
    """The run conf's input and output, each confined to ``repo``; None where not given."""
    source = confined_input(repo, conf.input_path) if conf.input_path is not None else None
    target = confined_output(repo, conf.output_path) if conf.output_path is not None else None
    return source, target
