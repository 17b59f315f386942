"""One day of served rows, from its prediction files to its results.

Each file is read whole into its own tally before it joins the day's, so a file that
fails half-way (a bad value in row 90 000) adds nothing: it is named in ``skipped`` with
its one-line reason and the day goes on. Memory stays bounded whatever the day holds:
files are read in chunks, counts are counts, and the rows the drift tests see are a
uniform sample of at most ``max_sample_rows`` per version (each row gets a random key
seeded by the day; the smallest keys are kept), merged per training reference.

Rows are grouped by the training data their version was trained from (its md5): two
versions trained on the same data are tested together, against it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from batchserving.core.params import MonitoringParams
from batchserving.monitoring.days import day_files
from batchserving.monitoring.drift import DriftDecision, decide
from batchserving.monitoring.quality import Confusion
from batchserving.monitoring.reference import Reference
from batchserving.monitoring.served import UNKNOWN, ServedChunk, iris_labels, read_served
from batchserving.registry.git import RegistryError
from batchserving.serving.tables import InputError
from batchserving.training.iris import FEATURES

Resolver = Callable[[str, str], Reference]


class Sample:
    """A uniform sample of at most ``size`` rows: those with the smallest random keys."""

    def __init__(self, size: int) -> None:
        import numpy as np

        self.size = size
        self.keys = np.empty(0)
        self.features = np.empty((0, len(FEATURES)))
        self.predicted = np.empty(0, dtype=object)

    def add(self, keys: Any, features: Any, predicted: Any) -> None:
        import numpy as np

        self.keys = np.concatenate([self.keys, keys])
        self.features = np.concatenate([self.features, features])
        self.predicted = np.concatenate([self.predicted, predicted])
        if len(self.keys) > self.size:
            keep = np.argpartition(self.keys, self.size)[: self.size]
            keep.sort()
            self.keys, self.features = self.keys[keep], self.features[keep]
            self.predicted = self.predicted[keep]

    def merge(self, other: Sample) -> None:
        self.add(other.keys, other.features, other.predicted)


@dataclass
class VersionTally:
    """What the day's rows of one model version (and commit) add up to."""

    sample: Sample
    rows: int = 0
    confusion: Confusion = field(default_factory=Confusion)
    predicted: Counter[str] = field(default_factory=Counter)

    def merge(self, other: VersionTally) -> None:
        self.sample.merge(other.sample)
        self.rows += other.rows
        self.confusion.merge(other.confusion)
        self.predicted.update(other.predicted)


def _tally_chunk(
    tallies: dict[tuple[str, str], VersionTally], chunk: ServedChunk, rng: Any, size: int
) -> None:
    import numpy as np

    pairs = np.char.add(chunk.versions.astype(str), np.char.add("@", chunk.commits.astype(str)))
    for pair in np.unique(pairs):
        rows = pairs == pair
        version, commit = str(pair).split("@")
        tally = tallies.setdefault((version, commit), VersionTally(Sample(size)))
        predicted, truth = chunk.predicted[rows], chunk.truth[rows]
        tally.sample.add(rng.random(int(rows.sum())), chunk.features[rows], predicted)
        tally.rows += int(rows.sum())
        tally.predicted.update(predicted.tolist())
        labelled = truth != UNKNOWN
        tally.confusion.add(truth[labelled].tolist(), predicted[labelled].tolist())


def tally_file(path: Path, params: MonitoringParams, rng: Any, iris: Any) -> dict:
    """The tallies of one file by (version, commit); InputError if any row is bad."""
    tallies: dict[tuple[str, str], VersionTally] = {}
    try:
        for chunk in read_served(path, params.read_chunk_rows, iris):
            _tally_chunk(tallies, chunk, rng, params.max_sample_rows)
    except InputError as exc:
        text = str(exc)
        raise InputError(text if str(path) in text else f"{path}: {text}") from None
    return tallies


@dataclass
class DayResult:
    """Everything the day's report, metrics and alert say."""

    day: date
    files: int
    skipped: list[dict[str, str]]
    tallies: dict[tuple[str, str], VersionTally]
    decisions: dict[str, DriftDecision]  # data md5 -> the decision on its rows
    unresolved: list[dict[str, str]]  # versions whose reference could not be read
    samples: dict[str, tuple[Reference, Sample]]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tallies.values())

    def confusion(self) -> Confusion:
        total = Confusion()
        for tally in self.tallies.values():
            total.merge(tally.confusion)
        return total


def _decide(tallies: dict, resolve: Resolver, params: MonitoringParams) -> tuple[dict, list, dict]:
    groups: dict[str, tuple[Reference, Sample]] = {}
    unresolved = []
    for (version, commit), tally in sorted(tallies.items()):
        try:
            reference = resolve(version, commit)
        except RegistryError as exc:
            unresolved.append({"version": version, "commit": commit, "reason": str(exc)[:300]})
            continue
        _, sample = groups.setdefault(
            reference.data_md5, (reference, Sample(params.max_sample_rows))
        )
        sample.merge(tally.sample)
    decisions = {}
    for md5, (reference, sample) in groups.items():
        if len(sample.keys) < params.min_rows:
            continue
        current = {f: sample.features[:, i] for i, f in enumerate(FEATURES)}
        decisions[md5] = decide(
            reference.features,
            current,
            reference.class_shares,
            sample.predicted,
            params.false_alarm_rate,
        )
    return decisions, unresolved, groups


def monitor_day(
    predictions_dir: Path, day: date, params: MonitoringParams, resolve: Resolver
) -> DayResult:
    """Read the day's prediction files, tally them and test them against their references."""
    import numpy as np

    files = day_files(predictions_dir, day, params.max_files)
    rng = np.random.default_rng(day.toordinal())
    iris = iris_labels()
    tallies: dict[tuple[str, str], VersionTally] = {}
    skipped = []
    for day_file in files:
        try:
            file_tallies = tally_file(day_file.path, params, rng, iris)
        except InputError as exc:
            skipped.append({"file": str(day_file.path), "reason": str(exc)[:300]})
            continue
        for key, tally in file_tallies.items():
            if key in tallies:
                tallies[key].merge(tally)
            else:
                tallies[key] = tally
    decisions, unresolved, samples = _decide(tallies, resolve, params)
    return DayResult(day, len(files), skipped, tallies, decisions, unresolved, samples)
