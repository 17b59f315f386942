"""Read and validate one section of ``params.yaml``.

Every error names the key, the value found and the values allowed, so that a bad
edit of ``params.yaml`` fails the stage with a message a person can act on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = "params.yaml"


class ParamsError(ValueError):
    """A value in params.yaml is missing or outside what the stage accepts."""


def load_section(section: str, path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Return the ``section`` mapping of the params file, or raise ParamsError."""
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


def require(
    params: Mapping[str, Any],
    section: str,
    key: str,
    kind: type | tuple[type, ...],
    allowed: str,
    check: Callable[[Any], bool] = lambda _: True,
) -> Any:
    """Return ``params[key]`` if it has type ``kind`` and passes ``check``.

    ``allowed`` is the human description of the allowed values used in the error.
    Booleans are rejected where numbers are expected (YAML ``true`` is not a count).
    """
    name = f"{section}.{key}"
    if key not in params:
        raise ParamsError(f"params.yaml: '{name}' is missing; allowed: {allowed}")
    value = params[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    is_bool = isinstance(value, bool) and bool not in kinds
    if is_bool or not isinstance(value, kinds):
        raise ParamsError(
            f"params.yaml: '{name}' = {value!r} has the wrong type "
            f"({type(value).__name__}); allowed: {allowed}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamsError(f"params.yaml: '{name}' = {value!r} is not finite; allowed: {allowed}")
    if not check(value):
        raise ParamsError(f"params.yaml: '{name}' = {value!r} is out of range; allowed: {allowed}")
    return value
