"""Filters figures: a facet grid of a layer's channel maps, and a grid of optimised images.

Channel maps are drawn at the layer's own resolution (one cell per activation, no
interpolation), so the hover shows the raw activation with its channel index and position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explainers.errors import ExplainerError
from figures.image import COLORBAR, photo_trace
from figures.style import apply_style

CELL_PX = 120
"""Height in pixels given to each grid row (cell plus its title)."""


def _grid(traces: list, cols: int, titles: Sequence[str], title: str | None, cell_px: int) -> go.Figure:
    """``traces`` in a (rows x cols) grid in reading order: square cells, hidden axes, image
    orientation, a title over each cell. The layout is built as one dict (validated once), several
    times faster than ``make_subplots`` plus per-axis updates for dozens of cells."""
    if not traces:
        raise ExplainerError("Nothing to draw: the grid needs at least one map.")
    cols = max(1, min(cols, len(traces)))
    rows = math.ceil(len(traces) / cols)
    gap_x, gap_y = 0.08 / cols, 0.25 / rows
    width, height = (1 - gap_x * (cols - 1)) / cols, (1 - gap_y * (rows - 1)) / rows
    layout: dict = {"annotations": []}
    for i, (trace, text) in enumerate(zip(traces, titles)):
        row, col = divmod(i, cols)
        suffix = "" if i == 0 else str(i + 1)
        left, top = col * (width + gap_x), 1 - row * (height + gap_y)
        layout[f"xaxis{suffix}"] = dict(domain=[left, left + width], visible=False, constrain="domain", anchor=f"y{suffix}")
        layout[f"yaxis{suffix}"] = dict(domain=[top - height, top], visible=False, autorange="reversed",
                                        scaleanchor=f"x{suffix}", constrain="domain", anchor=f"x{suffix}")
        layout["annotations"].append(dict(text=text, x=left + width / 2, y=top, xref="paper", yref="paper",
                                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=11)))
        trace.update(xaxis=f"x{suffix}", yaxis=f"y{suffix}")
    fig = go.Figure(data=traces, layout=layout)
    return apply_style(fig, title, height=60 + rows * cell_px)


def channel_grid(
    maps: np.ndarray,
    channels: Sequence[int],
    scores: Sequence[float] | None = None,
    *,
    score_label: str = "mean",
    cols: int = 8,
    colorscale: str = "Viridis",
    shared: bool = False,
    title: str | None = None,
) -> go.Figure:
    """A facet grid of channel maps (N, h, w), titled "#channel" (and its score if given).

    ``shared``: one colour scale for all maps (compare magnitudes); otherwise each map spans
    its own min..max (shows each map's pattern). Hover: channel index, x, y and the raw value.
    """
    arr = np.asarray(maps, dtype=np.float32)
    if arr.ndim != 3:
        raise ExplainerError(f"Expected channel maps of shape (N, h, w), got {arr.shape}.")
    if len(channels) != arr.shape[0] or (scores is not None and len(scores) != arr.shape[0]):
        raise ExplainerError(f"Got {arr.shape[0]} maps but {len(channels)} channel indices or a score count that differs.")
    if scores is None:
        titles = [f"#{c}" for c in channels]
    else:
        titles = [f"#{c} ({score_label} {float(s):.3g})" for c, s in zip(channels, scores)]
    finite = arr[np.isfinite(arr)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    traces = []
    for i, (channel, heat) in enumerate(zip(channels, arr)):
        trace = go.Heatmap(
            z=heat,
            colorscale=colorscale,
            hovertemplate=f"channel {channel}<br>x %{{x}}, y %{{y}}<br>value %{{z:.4g}}<extra></extra>",
            showscale=shared and i == 0,
        )
        if shared:
            trace.update(zmin=low, zmax=high, colorbar=dict(COLORBAR, len=0.5))
        traces.append(trace)
    return _grid(traces, cols, titles, title, CELL_PX)


def optimised_grid(images: np.ndarray, titles: Sequence[str], *, cols: int = 4, title: str | None = None) -> go.Figure:
    """A grid of images (N, H, W, 3) (uint8, or floats in [0, 1]) titled with ``titles``."""
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ExplainerError(f"Expected images of shape (N, H, W, 3), got {arr.shape}.")
    if len(titles) != len(arr):
        raise ExplainerError(f"Got {len(arr)} images but {len(titles)} titles.")
    return _grid([photo_trace(image) for image in arr], cols, titles, title, int(CELL_PX * 1.6))
