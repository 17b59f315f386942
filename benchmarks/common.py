"""What every benchmark reports: a named ratio, its target, and the two measurements."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """``value`` = ours / baseline, measured in one run; ``ok`` when it meets ``target``."""

    name: str
    value: float
    target: float
    detail: str
    higher_is_better: bool = False

    @property
    def ok(self) -> bool:
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


def print_figures(figures: list[Figure]) -> None:
    for f in figures:
        sign = ">=" if f.higher_is_better else "<="
        verdict = "ok" if f.ok else "MISSED"
        print(f"  {f.name:<48} {f.value:7.2f}  (target {sign} {f.target})  {verdict}  {f.detail}")


def median_seconds(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
