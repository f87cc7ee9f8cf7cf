"""Evaluation figures: deletion/insertion curves, randomisation cascade, method agreement."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go

from explainers.errors import ExplainerError
from figures.scales import DIVERGING
from figures.style import RANDOM_BASELINE_COLOUR, apply_style

PALETTE = pcolors.qualitative.Plotly
RANDOM_DASHES = ("dash", "dot", "dashdot")


def curve_colour(i: int) -> str:
    """The i-th method's line colour, the same in the Plotly figure and its PNG twin."""
    return PALETTE[i % len(PALETTE)]


def legend_name(key: str, auc: Mapping[str, float] | None) -> str:
    """``key``, with its AUC when the caller gave one: the same legend text in HTML and PNG."""
    return f"{key} (AUC {auc[key]:.3f})" if auc and key in auc else key


def random_curves(random: Sequence[float] | Mapping[str, Sequence[float]] | None) -> dict[str, Sequence[float]]:
    """The random baselines by name: one unnamed curve is called ``"random"``."""
    if random is None:
        return {}
    return dict(random) if isinstance(random, Mapping) else {"random": random}


def _legend_on_top(fig: go.Figure) -> None:
    """A horizontal legend between the title and the plot."""
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0, title_text=""),
                      margin=dict(t=90))


def curves_figure(
    x: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    random: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    auc: Mapping[str, float] | None = None,
    title: str | None = None,
    x_label: str = "fraction of pixels removed",
    y_label: str = "target probability",
) -> go.Figure:
    """One line per method over ``x`` (deletion or insertion curve), plus dashed grey random baselines.

    ``random``: one curve (named ``"random"``) or several by name (e.g. one per floor grid).
    ``auc`` (computed by the caller, keyed like ``curves`` and ``random``) is appended to the
    legend names.
    """
    xs = np.asarray(x, dtype=float)

    def line(key: str, y: Sequence[float], **style) -> go.Scatter:
        ys = np.asarray(y, dtype=float)
        if ys.shape != xs.shape:
            raise ExplainerError(f"Curve {key!r} has {ys.size} points for {xs.size} x values.")
        return go.Scatter(x=xs, y=ys, mode="lines", name=html.escape(legend_name(key, auc)), line=style,
                          hovertemplate=f"{html.escape(key)}<br>x %{{x:.3g}}<br>y %{{y:.4g}}<extra></extra>")

    traces = [line(k, y, color=curve_colour(i), width=2.5) for i, (k, y) in enumerate(curves.items())]
    traces += [line(k, y, color=RANDOM_BASELINE_COLOUR, width=2, dash=RANDOM_DASHES[i % len(RANDOM_DASHES)])
               for i, (k, y) in enumerate(random_curves(random).items())]
    fig = go.Figure(traces)
    fig.update_xaxes(title_text=x_label, zeroline=False)
    fig.update_yaxes(title_text=y_label, zeroline=False)
    apply_style(fig, title, height=440)
    _legend_on_top(fig)
    return fig


def agreement_heatmap(
    matrix: np.ndarray,
    names: Sequence[str],
    title: str | None = None,
    metric: str = "Spearman ρ",
    zmin: float = -1.0,
    zmax: float = 1.0,
) -> go.Figure:
    """A methods x methods agreement matrix (e.g. rank correlation of their maps), values printed in the cells."""
    m = np.asarray(matrix, dtype=float)
    if m.shape != (len(names), len(names)):
        raise ExplainerError(f"Expected a ({len(names)}, {len(names)}) agreement matrix, got {m.shape}.")
    esc = [html.escape(n) for n in names]
    custom = [[[esc[i], esc[j]] for j in range(len(esc))] for i in range(len(esc))]
    pos = list(range(len(names)))
    fig = go.Figure(
        go.Heatmap(
            z=m, zmin=zmin, zmax=zmax, colorscale=DIVERGING, xgap=2, ygap=2, customdata=custom,
            texttemplate="%{z:.2f}", textfont=dict(size=12),
            colorbar=dict(thickness=12, outlinewidth=0, title=dict(text=metric, side="right")),
            hovertemplate="%{customdata[0]} vs %{customdata[1]}<br>" + metric + " %{z:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(tickvals=pos, ticktext=esc, showgrid=False, zeroline=False, side="bottom", tickangle=-35,
                     automargin=True)
    fig.update_yaxes(tickvals=pos, ticktext=esc, showgrid=False, zeroline=False, autorange="reversed", automargin=True)
    apply_style(fig, title, height=max(380, 200 + 48 * len(names)))
    # the method names sit under the matrix (rotated), so the title above has the top to itself
    fig.update_layout(title=dict(y=0.98, yanchor="top"), margin=dict(t=60))
    return fig


def log_steps_axis(fig: go.Figure, steps: Sequence[int]) -> go.Figure:
    """A log x axis labelled at the step counts themselves (8, 16, 32, ...), not Plotly's 2-3-4 minor ticks."""
    counts = sorted({int(s) for s in steps})
    fig.update_xaxes(type="log", tickmode="array", tickvals=counts, ticktext=[str(c) for c in counts], minor=dict(ticks=""))
    return fig


def correlation_cascade(
    depth_labels: Sequence[str],
    corr: Mapping[str, Sequence[float]],
    title: str | None = None,
    y_label: str = "rank correlation with original map",
) -> go.Figure:
    """Model-randomisation cascade: per method, similarity of its map to the original as layers are re-initialised from the top.

    A sanity-passing method falls towards 0; one that stays near 1 ignores the weights.
    """
    pos = np.arange(len(depth_labels))
    traces = []
    for i, (k, v) in enumerate(corr.items()):
        y = np.asarray(v, dtype=float)
        if y.size != pos.size:
            raise ExplainerError(f"Method {k!r} has {y.size} correlations for {pos.size} depths.")
        traces.append(go.Scatter(x=pos, y=y, mode="lines+markers", name=html.escape(k),
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2.5), marker=dict(size=7),
                                 customdata=[html.escape(d) for d in depth_labels],
                                 hovertemplate=f"{html.escape(k)}<br>%{{customdata}}<br>ρ %{{y:.3f}}<extra></extra>"))
    fig = go.Figure(traces)
    fig.add_hline(y=0, line=dict(color=RANDOM_BASELINE_COLOUR, width=1, dash="dot"))
    fig.update_xaxes(tickvals=pos, ticktext=[html.escape(d) for d in depth_labels], tickangle=-40,
                     title_text="randomised down to", showgrid=False)
    fig.update_yaxes(range=[-1.05, 1.05], title_text=y_label, zeroline=False)
    apply_style(fig, title, height=460)
    _legend_on_top(fig)
    return fig
