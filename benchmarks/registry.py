"""Registry lookups as the tasks do them (latest version + current prod) at 1,000 vs 10 versions.

Each registry is a git repo whose commits carry GTO's tags: ``iris-model@v0.0.N`` on every
commit and an ``iris-model#prod#K`` tag on every tenth, written with ``git tag -a`` as
GTO writes them. The figure is the median lookup time at 1,000 versions over that at 10.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from batchserving.core.names import ARTIFACT, PROD_STAGE
from batchserving.registry.versions import current_prod, latest_version
from benchmarks.common import Figure, median_seconds

IDENTITY = ["-c", "user.name=Bench", "-c", "user.email=bench@example.invalid"]


def make_registry(root: Path, versions: int) -> Path:
    """A repo with ``versions`` registered versions and a prod assignment every tenth."""
    repo = root / f"registry-{versions}"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    script = []
    for n in range(1, versions + 1):
        script.append(f"git {' '.join(IDENTITY)} commit -q --allow-empty -m v{n}")
        script.append(f"git {' '.join(IDENTITY)} tag -a '{ARTIFACT}@v0.0.{n}' -m r")
        if n % 10 == 0 or n == versions:
            counter = n // 10 + 1
            script.append(
                f"git {' '.join(IDENTITY)} tag -a '{ARTIFACT}#{PROD_STAGE}#{counter}' -m a"
            )
    subprocess.run(["sh", "-e"], input="\n".join(script), text=True, cwd=repo, check=True)
    # As a workspace after its sync (which packs the fetched tags into one file).
    subprocess.run(["git", "pack-refs", "--all"], cwd=repo, check=True)
    return repo


def lookups(repo: Path) -> None:
    assert latest_version(repo) is not None and current_prod(repo) is not None


def main() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        small, large = make_registry(Path(tmp), 10), make_registry(Path(tmp), 1_000)
        lookups(small)  # warm imports
        small_s = median_seconds(lambda: lookups(small), repeat=7)
        large_s = median_seconds(lambda: lookups(large), repeat=7)
    return [
        Figure(
            "registry: lookups at 1,000 versions / at 10",
            large_s / small_s,
            2.0,
            f"({large_s * 1000:.0f} ms vs {small_s * 1000:.0f} ms, medians of 7)",
        )
    ]
