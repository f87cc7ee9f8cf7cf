"""The benchmark table as a Plotly chart: each variant's median time ratio to its case's reference.

Arrays in, figure out, like the other builders: rows are ``bench.harness.Row``-like objects with
``case``, ``label``, ``ratio``, ``ratio_min``, ``ratio_max`` and ``goal``. Bars are grouped by
case (the reference is 1.0), whiskers span min-max over the alternated repetitions, and a goal
of the form ``<= N`` is drawn as a diamond at N on its row. The ratio axis is logarithmic.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Protocol

import plotly.graph_objects as go

from figures.style import apply_style

GOAL = re.compile(r"<=\s*([0-9]*\.?[0-9]+)")
COLOURS = {"reference": "#9aa5b1", "ours": "#2f6fde", "other": "#e8833a"}


class BenchRow(Protocol):
    case: str
    label: str
    ratio: float
    ratio_min: float
    ratio_max: float
    goal: str


def goal_ratio(goal: str) -> float | None:
    """N from a goal written ``<= N...`` (the ratio a variant should stay under), else None."""
    match = GOAL.search(goal)
    return float(match.group(1)) if match else None


def kind(row: BenchRow) -> str:
    if row.ratio == 1.0 and row.ratio_min == row.ratio_max == 1.0:
        return "reference"
    return "ours" if row.label.startswith("ours") else "other"


def ratio_chart(rows: Sequence[BenchRow], title: str = "Benchmarks: time / reference (median, min-max)") -> go.Figure:
    """Horizontal bars, one per (case, variant), cases in order from the top."""
    labels = [f"{html.escape(r.case)} · {html.escape(r.label)}" for r in rows]
    fig = go.Figure()
    for name in COLOURS:
        picked = [i for i, r in enumerate(rows) if kind(r) == name]
        if not picked:
            continue
        fig.add_trace(go.Bar(
            orientation="h", name=name, x=[rows[i].ratio for i in picked], y=[labels[i] for i in picked],
            marker_color=COLOURS[name],
            error_x=dict(type="data", symmetric=False, array=[rows[i].ratio_max - rows[i].ratio for i in picked],
                         arrayminus=[rows[i].ratio - rows[i].ratio_min for i in picked]),
            hovertemplate="%{y}<br>median %{x:.2f}x<extra></extra>",
        ))
    goals = [(labels[i], goal_ratio(r.goal), r.goal) for i, r in enumerate(rows) if goal_ratio(r.goal) is not None]
    if goals:
        fig.add_trace(go.Scatter(
            x=[g[1] for g in goals], y=[g[0] for g in goals], mode="markers", name="goal",
            marker=dict(symbol="diamond", size=11, color="#1f2933"), text=[html.escape(g[2]) for g in goals],
            hovertemplate="goal: %{text}<extra></extra>",
        ))
    fig.update_yaxes(categoryorder="array", categoryarray=labels[::-1], automargin=True)
    fig.update_xaxes(type="log", title_text="time / reference (log scale)")
    return apply_style(fig, title, height=160 + 24 * len(rows))
