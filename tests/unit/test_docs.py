"""The README is a door: at most 200 lines, and every page it links to exists."""

from __future__ import annotations

import re

from batchserving import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def test_readme_is_at_most_200_lines() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


def test_every_local_link_in_the_docs_exists() -> None:
    pages = [README, *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
    missing = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" not in target and not (page.parent / target).exists():
                missing.append(f"{page.name}: {target}")
    assert missing == []
