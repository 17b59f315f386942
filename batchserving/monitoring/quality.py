"""Live accuracy and macro F1 from confusion counts, the way scikit-learn defines them.

Counts add up chunk by chunk and file by file, so a day of any size is scored in constant
memory. Macro F1 averages the per-class F1 over the classes that occur among the true or
the predicted labels (scikit-learn's default ``labels``), F1 = 2TP / (2TP + FP + FN).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


class Confusion:
    """Counts of (true, predicted) label pairs."""

    def __init__(self) -> None:
        self.pairs: Counter[tuple[str, str]] = Counter()

    def add(self, truth: Iterable[str], predicted: Iterable[str]) -> None:
        self.pairs.update(zip(truth, predicted, strict=True))

    def merge(self, other: Confusion) -> None:
        self.pairs.update(other.pairs)

    @property
    def rows(self) -> int:
        return sum(self.pairs.values())

    def accuracy(self) -> float | None:
        """Share of rows predicted right; None without rows."""
        if not self.rows:
            return None
        return sum(n for (t, p), n in self.pairs.items() if t == p) / self.rows

    def f1_macro(self) -> float | None:
        """Unweighted mean of the per-class F1; None without rows."""
        if not self.rows:
            return None
        labels = {t for t, _ in self.pairs} | {p for _, p in self.pairs}
        scores = []
        for label in labels:
            tp = self.pairs[(label, label)]
            fp = sum(n for (t, p), n in self.pairs.items() if p == label and t != label)
            fn = sum(n for (t, p), n in self.pairs.items() if t == label and p != label)
            scores.append(2 * tp / (2 * tp + fp + fn))
        return sum(scores) / len(scores)
