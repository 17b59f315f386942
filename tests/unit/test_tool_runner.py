"""The one runner of git and dvc: the project's tools, and one bounded, redacted error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from batchserving.registry.git import (
    TAIL_LINES,
    TAIL_PIECE_CHARS,
    RegistryError,
    last_lines,
    run_tool,
)

SECRET = "s3cr3t-token-value"


def test_a_failed_command_is_named_redacted_and_bounded(tmp_path: Path) -> None:
    url = f"https://bot:{SECRET}@127.0.0.1:9/{'x' * 5000}.git"
    with pytest.raises(RegistryError) as raised:
        run_tool(["git", "ls-remote", url], tmp_path)
    message = str(raised.value)
    assert message.startswith("git ls-remote https://***@127.0.0.1:9/xxx")
    assert " failed: " in message and SECRET not in message
    assert len(message) < 1500
    assert "\n" not in message


def test_the_tools_are_the_ones_beside_this_interpreter(tmp_path: Path) -> None:
    # A PATH where another `dvc` or `python` would come first (a login shell's shims).
    result = run_tool(
        ["sh", "-c", "command -v dvc; command -v python"], tmp_path, env={"PATH": "/usr/bin"}
    )
    here = Path(sys.executable).parent
    assert result.stdout.split() == [str(here / "dvc"), str(here / "python")]


def test_the_error_type_is_the_callers(tmp_path: Path) -> None:
    class NotHere(RegistryError):
        pass

    with pytest.raises(NotHere, match="^git rev-parse HEAD failed: fatal: not a git"):
        run_tool(["git", "rev-parse", "HEAD"], tmp_path, error=NotHere)


def test_a_passed_on_commands_tail_is_its_last_lines_and_bounded(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # 50 MB on one stderr line, then the command's reason: all of it passed on, little kept.
    script = (
        "import sys; sys.stderr.write('x' * 50_000_000 + '\\n'); "
        "print('step one', file=sys.stderr); print('stage: the reason', file=sys.stderr); "
        "print('on stdout'); sys.exit(3)"
    )
    result = run_tool([sys.executable, "-c", script], tmp_path, check=False, capture=False)
    code, tail = result.returncode, result.stderr
    passed_on = capfd.readouterr()
    assert code == 3
    assert tail.splitlines()[-2:] == ["step one", "stage: the reason"]
    assert len(tail) <= TAIL_LINES * (TAIL_PIECE_CHARS + 1)
    assert len(passed_on.err) > 50_000_000 and passed_on.err.endswith("stage: the reason\n")
    assert passed_on.out == "on stdout\n"
    assert last_lines(tail, 2) == "step one | stage: the reason"
