"""What a monitored day says: its summary, its metrics for DVC, its alert (or none).

The summary is the day's whole result as JSON (``summary.json`` beside the report); the
metrics are its numbers (``dvc metrics show``/``diff``); the history row is what
``dvc plots show`` draws across days. The alert is one message, only when drift is
detected, live accuracy is under ``selection.min_score`` on at least
``monitoring.min_labelled_rows`` labelled rows, or a file or a version could not be read;
an ordinary day, and a day without predictions, send none.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from batchserving.monitoring.day import DayResult

HISTORY_COLUMNS = ["day", "rows", "labelled_rows", "drift_share", "accuracy", "f1_macro"]


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _versions(result: DayResult) -> dict[str, Any]:
    versions: dict[str, Any] = {}
    for (version, commit), tally in sorted(result.tallies.items()):
        versions[f"{version}@{commit[:12]}"] = {
            "version": version,
            "commit": commit,
            "rows": tally.rows,
            "labelled_rows": tally.confusion.rows,
            "accuracy": _round(tally.confusion.accuracy()),
            "predicted": dict(sorted(tally.predicted.items())),
        }
    return versions


def _drift(result: DayResult) -> dict[str, Any]:
    tests = [t for d in result.decisions.values() for t in d.tests]
    features = sum(d.features_tested for d in result.decisions.values())
    drifted_features = sum(1 for t in tests if t.drifted and t.test == "ks")
    return {
        "detected": any(t.drifted for t in tests),
        "share": round(drifted_features / features, 4) if features else 0.0,
        "columns": sorted({t.column for t in tests if t.drifted}),
        "tests": [
            {**t.as_dict(), "reference": md5}
            for md5, d in sorted(result.decisions.items())
            for t in d.tests
        ],
    }


def summarise(
    result: DayResult, min_score: float, min_labelled_rows: int, report: str
) -> dict[str, Any]:
    """The day's summary; ``alert`` is the Slack message (naming ``report``), or None."""
    confusion = result.confusion()
    accuracy = confusion.accuracy()
    drift = _drift(result)
    low = accuracy is not None and confusion.rows >= min_labelled_rows and accuracy < min_score
    summary = {
        "day": result.day.isoformat(),
        "status": "monitored" if result.rows else "no data",
        "files": result.files,
        "rows": result.rows,
        "skipped": result.skipped,
        "unresolved": result.unresolved,
        "versions": _versions(result),
        "drift": drift,
        "labelled_rows": confusion.rows,
        "accuracy": _round(accuracy),
        "f1_macro": _round(confusion.f1_macro()),
        "min_score": min_score,
        "accuracy_below_min": low,
        "report": report,
    }
    summary["alert"] = alert_message(summary)
    return summary


def _test_text(test: dict[str, Any]) -> str:
    name = "KS D" if test["test"] == "ks" else "chi2"
    return (
        f"{test['column']} ({name}={test['statistic']:.3f}, p={test['p_value']:.2g} "
        f"< {test['threshold']:.2g})"
    )


def alert_message(summary: dict[str, Any]) -> str | None:
    """One Slack line naming what crossed a threshold, the figures and the report; or None."""
    drift, parts = summary["drift"], []
    if drift["detected"]:
        tests = [_test_text(t) for t in drift["tests"] if t["drifted"]]
        parts.append(f"drift in {', '.join(tests)}; drift share {drift['share']:.2f}")
    if summary["accuracy_below_min"]:
        parts.append(
            f"live accuracy {summary['accuracy']:.3f} on {summary['labelled_rows']} labelled "
            f"rows, below selection.min_score {summary['min_score']}"
        )
    if summary["skipped"]:
        names = ", ".join(s["file"].rsplit("/", 1)[-1] for s in summary["skipped"][:3])
        parts.append(f"{len(summary['skipped'])} unreadable prediction file(s) skipped ({names})")
    if summary["unresolved"]:
        names = ", ".join(sorted({u["version"] for u in summary["unresolved"]}))
        parts.append(f"rows of versions without a readable training reference ({names})")
    if not parts:
        return None
    accuracy = "n/a" if summary["accuracy"] is None else f"{summary['accuracy']:.3f}"
    return (
        f":warning: monitor_predictions {summary['day']} (KST): {'; '.join(parts)}. "
        f"{summary['rows']} rows, accuracy {accuracy}, versions "
        f"{', '.join(v['version'] for v in summary['versions'].values()) or 'none'}. "
        f"Report: {summary['report']}"
    )


def _rows_by_version(summary: dict[str, Any]) -> dict[str, int]:
    rows: Counter[str] = Counter()
    for entry in summary["versions"].values():
        rows[entry["version"]] += entry["rows"]
    return dict(sorted(rows.items()))


def metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The day's numbers for ``dvc metrics`` (the latest day; git-tracked)."""
    return {
        "day": summary["day"],
        "rows": summary["rows"],
        "files": summary["files"],
        "skipped_files": len(summary["skipped"]),
        "labelled_rows": summary["labelled_rows"],
        "drift_detected": summary["drift"]["detected"],
        "drift_share": summary["drift"]["share"],
        "accuracy": summary["accuracy"],
        "f1_macro": summary["f1_macro"],
        "versions": _rows_by_version(summary),
    }


def history_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The day's row of the history ``dvc plots show`` draws (empty cells for n/a)."""
    values = metrics(summary) | {"drift_share": summary["drift"]["share"]}
    return {c: "" if values[c] is None else values[c] for c in HISTORY_COLUMNS}
