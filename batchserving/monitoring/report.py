"""The day's HTML report: one self-contained page with its pictures drawn as inline SVG.

Per feature, the training and the served distributions as overlaid histograms with the
test, statistic, p-value and threshold; the predicted class shares against the
reference's; live accuracy and macro F1; the rows of each version; the files skipped.
Every value shown is escaped; the page loads nothing from anywhere.
"""

from __future__ import annotations

from html import escape
from typing import Any

from batchserving.monitoring.day import DayResult
from batchserving.training.iris import CLASSES, FEATURES

BINS = 20
WIDTH, HEIGHT = 360, 140
COLOURS = {"reference": "#4c78a8", "served": "#f58518"}


def _bars(
    series: dict[str, list[float]], labels: list[str], axis: tuple[str, str] | None = None
) -> str:
    """An SVG of grouped bars: for each label, one bar per series (values are shares).

    ``axis`` names the two ends of the x axis instead of a label under every group.
    """
    top = max((v for values in series.values() for v in values), default=0.0) or 1.0
    slot = WIDTH / max(len(labels), 1)
    bar = slot / (len(series) + 1)
    shapes = []
    for s, (name, values) in enumerate(series.items()):
        for i, value in enumerate(values):
            h = (HEIGHT - 20) * value / top
            x = i * slot + s * bar
            shapes.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - 20 - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[name]}" opacity="0.8"/>'
            )
    if axis:
        shapes.append(
            f'<text x="0" y="{HEIGHT - 5}" font-size="11">{escape(axis[0])}</text>'
            f'<text x="{WIDTH}" y="{HEIGHT - 5}" font-size="11" text-anchor="end">'
            f"{escape(axis[1])}</text>"
        )
    else:
        shapes += [
            f'<text x="{(i + 0.4) * slot:.1f}" y="{HEIGHT - 5}" font-size="11" '
            f'text-anchor="middle">{escape(label)}</text>'
            for i, label in enumerate(labels)
        ]
    return f'<svg width="{WIDTH}" height="{HEIGHT}" role="img">{"".join(shapes)}</svg>'


def _histogram(reference: Any, served: Any) -> str:
    """Reference and served shares in ``BINS`` equal bins over both samples' range."""
    import numpy as np

    both = np.concatenate([reference, served])
    edges = np.linspace(both.min(), both.max() + 1e-9, BINS + 1)
    shares = {
        name: (np.histogram(values, edges)[0] / max(len(values), 1)).tolist()
        for name, values in (("reference", reference), ("served", served))
    }
    labels = [f"{edge:.2f}" for edge in edges[:-1]]
    return _bars(shares, labels, axis=(f"{edges[0]:.1f} cm", f"{edges[-1]:.1f} cm"))


def _feature_sections(result: DayResult) -> list[str]:
    sections = []
    for md5, decision in sorted(result.decisions.items()):
        reference, sample = result.samples[md5]
        by_column = {t.column: t for t in decision.tests}
        for i, feature in enumerate(FEATURES):
            test = by_column[feature]
            verdict = "<b class=drift>drift detected</b>" if test.drifted else "no drift"
            sections.append(
                f"<section><h3>{escape(feature)}: {verdict}</h3>"
                f"<p>Kolmogorov-Smirnov D = {test.statistic:.4f}, p = {test.p_value:.3g} "
                f"(threshold {test.threshold:.3g}); {len(sample.keys)} served rows against "
                f"{reference.rows} training rows (data md5 {escape(md5)})</p>"
                f"{_histogram(reference.features[feature], sample.features[:, i])}</section>"
            )
        served = [float((sample.predicted == c).mean()) for c in CLASSES]
        expected = [reference.class_shares[c] for c in CLASSES]
        chi2 = by_column.get("predicted_class")
        verdict = (
            "not tested (too few rows)"
            if chi2 is None
            else f"chi-square = {chi2.statistic:.3f}, p = {chi2.p_value:.3g} "
            f"(threshold {chi2.threshold:.3g}): "
            + ("<b class=drift>drift detected</b>" if chi2.drifted else "no drift")
        )
        sections.append(
            f"<section><h3>predicted_class</h3><p>{verdict}</p>"
            f"{_bars({'reference': expected, 'served': served}, CLASSES)}</section>"
        )
    return sections


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _headline(summary: dict[str, Any]) -> str:
    drift = summary["drift"]
    found = (
        "<b class=drift>detected</b> in " + escape(", ".join(drift["columns"]))
        if drift["detected"]
        else "not detected"
    )
    return (
        f"{summary['rows']} rows in {summary['files']} files; drift {found}; live accuracy "
        f"{_figure(summary['accuracy'])}, macro F1 {_figure(summary['f1_macro'])} on "
        f"{summary['labelled_rows']} labelled rows (floor {summary['min_score']})."
    )


def render(result: DayResult, summary: dict[str, Any]) -> str:
    """The report page of the day."""
    headline = (
        "No predictions were served on this day."
        if summary["status"] == "no data"
        else _headline(summary)
    )
    versions = _table(
        [
            [v["version"], v["commit"][:12], v["rows"], v["labelled_rows"], v["accuracy"]]
            for v in summary["versions"].values()
        ],
        ["version", "commit", "rows", "labelled", "accuracy"],
    )
    problems = _table(
        [[s["file"], s["reason"]] for s in summary["skipped"]]
        + [[f"{u['version']}@{u['commit'][:12]}", u["reason"]] for u in summary["unresolved"]],
        ["skipped", "why"],
    )
    legend = " ".join(f'<span style="color:{c}">&#9632; {n}</span>' for n, c in COLOURS.items())
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>Monitoring {escape(summary['day'])}</title><style>"
        "body{font-family:sans-serif;margin:2em}section{display:inline-block;width:400px;margin:1em;"
        "vertical-align:top}.drift{color:#c00}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px}</style></head><body>"
        f"<h1>monitor_predictions: {escape(summary['day'])} (KST)</h1><p>{headline}</p>"
        f"<h2>Versions</h2>{versions}<h2>Drift</h2><p>{legend}</p>"
        f"{''.join(_feature_sections(result))}"
        f"<h2>Skipped</h2>{problems}</body></html>\n"
    )
