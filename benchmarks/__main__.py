"""Run every benchmark: ``python -m benchmarks [NAME ...]`` (``make bench``).

Each module ``benchmarks/<name>.py`` has a ``main() -> list[Figure]``; every figure is a
ratio of two quantities measured in the same run, so it holds on a noisy machine.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import benchmarks
from benchmarks.common import Figure, print_figures


def main() -> None:
    wanted = set(sys.argv[1:])
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(benchmarks.__file__).parent)])
        if m.name not in {"common", "__main__"}
    )
    figures: list[Figure] = []
    failed = False
    for name in names:
        if wanted and name not in wanted:
            continue
        print(f"== {name}", flush=True)
        module_figures = importlib.import_module(f"benchmarks.{name}").main()
        print_figures(module_figures)
        figures.extend(module_figures)
    failed = any(not f.ok for f in figures)
    print("\n== summary")
    print_figures(figures)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
