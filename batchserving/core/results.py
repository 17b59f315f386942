"""A task command's result: one JSON object on its last output line, the task's XCom.

Every task command ends with ``emit(result)``; whatever reads a result (the DAG's branch,
its asset events and Slack summaries, the next command) reads it with ``read_result``.
Lines a command prints before its result are for people; nothing parses them.
"""

from __future__ import annotations

import json
from typing import Any

# An XCom comes back from the metadata DB; a comparison is a few KB.
MAX_RESULT_CHARS = 1_000_000


class ResultError(RuntimeError):
    """A task's return value is not the result object its command emits."""


def emit(result: dict[str, Any]) -> None:
    """Print ``result`` as one JSON line; call it last, so it is the command's last line."""
    print(json.dumps(result, sort_keys=True, ensure_ascii=False), flush=True)


def read_result(value: Any, source: str) -> dict[str, Any]:
    """The result object in ``value`` (an XCom or a command's last line) from ``source``."""
    if isinstance(value, dict):
        return value
    result = None
    if isinstance(value, str) and len(value) <= MAX_RESULT_CHARS:
        try:
            result = json.loads(value)
        except json.JSONDecodeError:
            result = None
    if not isinstance(result, dict):
        raise ResultError(
            f"{source} returned no result object ({str(value)[:80]!r}); run the whole DAG again"
        )
    return result
