"""One self-contained HTML report: sections of inputs, prediction, figures, per-map facts and captions.

plotly.js is inlined once in ``<head>`` (``plotly.offline.get_plotlyjs()``); each figure is a
``fig.to_html(full_html=False, include_plotlyjs=False)`` fragment, so the file opens offline in
any browser and its size grows by the figures' data only. Every user-supplied string (file
names, class names, text) is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import plotly.graph_objects as go
import plotly.offline

from reports.versions import versions as current_versions

FIGURE_CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """
body { font-family: Inter, 'Segoe UI', 'Helvetica Neue', Arial, sans-serif; color: #1f2933;
       max-width: 1400px; margin: 0 auto; padding: 24px; line-height: 1.45; }
h1 { font-size: 26px; margin-bottom: 4px; } h2 { font-size: 20px; margin-top: 40px;
     border-bottom: 1px solid #e4e7eb; padding-bottom: 4px; } h3 { font-size: 16px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #e4e7eb; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f5f7fa; } .muted { color: #7b8794; font-size: 13px; } .error { color: #b91c1c; }
.warn { color: #b45309; } code { background: #f5f7fa; padding: 0 3px; }
.figure { margin: 8px 0 24px; }
"""


@dataclass
class MapFacts:
    """What is known about one map: how it was made, how long it took, how trustworthy it is.

    ``scale``: the colour range shown (e.g. from :class:`figures.scales.Scale`); ``delta_ratio``:
    Integrated Gradients' |completeness gap| / |f(x) - f(baseline)|; ``delta``: the raw gap where
    no ratio is known (text); ``scores``: any further numbers (faithfulness, steps), by name.
    """

    method: str
    target: str
    layer: str | None = None
    seconds: float | None = None
    scale: str | None = None
    delta_ratio: float | None = None
    delta: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Section:
    """One explained input: its description (``inputs``: e.g. image, model, layer), the top
    predictions as (label, probability), titled figures, one :class:`MapFacts` per map, and
    the method captions (light markdown: ``**bold**``, ``*italic*``, ```code```)."""

    title: str
    inputs: dict[str, str] = field(default_factory=dict)
    prediction: list[tuple[str, float]] = field(default_factory=list)
    figures: list[tuple[str, go.Figure]] = field(default_factory=list)
    facts: list[MapFacts] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)


def light_markdown(text: str) -> str:
    """Escaped ``text`` with ``**bold**``, ``*italic*`` and ```code``` turned into tags (all the captions use)."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", out)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; cells are already-escaped HTML."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fact_row(f: MapFacts) -> list[str]:
    e = html.escape
    if f.error:
        quality = f'<span class="error">not computed: {e(f.error)}</span>'
    else:
        parts = []
        if f.delta_ratio is not None:
            cls = "warn" if f.delta_ratio > 0.01 else ""
            parts.append(f'<span class="{cls}">IG delta {f.delta_ratio:.2%} of the score difference</span>')
        if f.delta is not None:
            parts.append(f"IG delta {f.delta:+.4g}")
        parts += [f"{e(name)} {value:.4g}" for name, value in f.scores.items()]
        quality = "<br>".join(parts)
    seconds = "" if f.seconds is None else f"{f.seconds * 1000:.0f} ms"
    scale = e(f.scale or "").replace("\n", "<br>")
    return [f"<b>{e(f.method)}</b>", e(f.target), f"<code>{e(f.layer)}</code>" if f.layer else "", seconds, scale,
            quality]


def _figure(fig: go.Figure, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False, div_id=div_id,
                       config=FIGURE_CONFIG)


def _section(section: Section, index: int) -> str:
    e = html.escape
    parts = [f"<section><h2>{e(section.title)}</h2>"]
    if section.inputs:
        parts.append(_table(["Input", "Value"], [[e(k), e(v)] for k, v in section.inputs.items()]))
    if section.prediction:
        parts.append("<h3>Prediction</h3>")
        parts.append(_table(["Class", "Probability"], [[e(label), f"{p:.2%}"] for label, p in section.prediction]))
    for k, (title, fig) in enumerate(section.figures):
        heading = f"<h3>{e(title)}</h3>" if title else ""
        parts.append(f'<div class="figure">{heading}{_figure(fig, f"figure-{index}-{k}")}</div>')
    if section.facts:
        parts.append("<h3>Facts per map</h3>")
        parts.append(_table(["Method", "Target", "Layer", "Time", "Colour scale", "Checks"],
                            [_fact_row(f) for f in section.facts]))
    if section.captions:
        parts.append("<h3>What the colours mean</h3>")
        parts += [f"<p>{light_markdown(c)}</p>" for c in section.captions]
    parts.append("</section>")
    return "\n".join(parts)


def build_report(
    title: str,
    sections: Sequence[Section],
    versions: Mapping[str, str] | None = None,
    note: str | None = None,
) -> str:
    """The report as one HTML string: every section, then the versions used (default: :func:`reports.versions.versions`)."""
    e = html.escape
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    used = dict(versions if versions is not None else current_versions())
    body = [f"<h1>{e(title)}</h1>", f'<p class="muted">Generated {stamp}. Self-contained: opens offline; '
            "hover the figures for raw values.</p>"]
    if note:
        body.append(f"<p>{light_markdown(note)}</p>")
    body += [_section(s, i) for i, s in enumerate(sections)]
    body.append("<h2>Versions</h2>")
    body.append(_table(["Software", "Version"], [[e(k), f"<code>{e(v)}</code>"] for k, v in used.items()]))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{e(title)}</title><style>{STYLE}</style>"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script></head>\n'
        f"<body>\n{chr(10).join(body)}\n</body></html>\n"
    )
