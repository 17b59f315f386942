"""`make help` lists every target the Makefile declares."""

from __future__ import annotations

import re
import subprocess

from batchserving import PROJECT_ROOT


def test_make_help_lists_every_phony_target() -> None:
    text = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    declared = re.search(r"^\.PHONY:((?:.*\\\n)*.*)$", text, re.MULTILINE)
    assert declared, "no .PHONY line"
    targets = set(declared.group(1).replace("\\\n", " ").split()) - {"help"}
    shown = subprocess.run(
        ["make", "-s", "help"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout
    listed = {line.split()[1] for line in shown.splitlines() if line.startswith("make ")}
    assert targets - listed == set(), f"make help does not list {sorted(targets - listed)}"
