"""Image figures: the photo, an attribution map over it, a grid of maps, the top-k bar chart.

Maps are drawn *stretched over the photo*: a map of shape (h, w) over a photo of (H, W)
gets cells of W/w x H/h photo pixels (nearest-neighbour, no interpolation, values never
resampled), so the hover always shows a raw map value. Maps at input resolution (the
attribution contract) over the model-input photo line up pixel for pixel; over a photo of
another size they are stretched the same way the model's crop was, which the caller must
match (pass the photo the model saw).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from explainers.errors import ExplainerError
from figures.scales import Scale, colour_stops, distinct, resolve_grid_scales, scale_for
from figures.style import ACCENT, FONT, MUTED, apply_style

COLORBAR = dict(thickness=12, outlinewidth=0, exponentformat="e", nticks=5, tickfont=dict(size=11))


def as_rgb_uint8(img: np.ndarray) -> np.ndarray:
    """``img`` as (H, W, 3) uint8: accepts gray (H, W), RGB(A) uint8, or floats in [0, 1]."""
    a = np.asarray(img)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ExplainerError(f"Expected an image of shape (H, W, 3), got {a.shape}.")
    a = a[..., :3]
    if a.dtype != np.uint8:
        a = np.nan_to_num(a.astype(float))
        a = np.clip(a * 255.0 if a.max() <= 1.0 else a, 0, 255).round().astype(np.uint8)
    return a


def _heat_2d(heat: np.ndarray) -> np.ndarray:
    h = np.asarray(heat, dtype=np.float32)
    if h.ndim == 3 and h.shape[0] == 1:
        h = h[0]
    if h.ndim != 2:
        raise ExplainerError(f"Expected an attribution map of shape (H, W), got {np.asarray(heat).shape}.")
    return h


def _jpeg_data_uri(img: np.ndarray) -> str:
    """JPEG (quality 92) rather than PNG: about 6x smaller for photos, repeated once per grid cell."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=92)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def photo_trace(img: np.ndarray, opacity: float = 1.0) -> go.Image:
    """The photo as a compact JPEG-backed ``go.Image`` (pixel centres at integer x, y)."""
    return go.Image(source=_jpeg_data_uri(as_rgb_uint8(img)), opacity=opacity, hoverinfo="skip")


def heat_trace(heat: np.ndarray, image_hw: tuple[int, int], coloraxis: str, opacity: float, name: str = "") -> go.Heatmap:
    """``heat`` stretched over a photo of ``image_hw`` (see module doc); hover shows x, y and the raw value."""
    h = _heat_2d(heat)
    dy, dx = image_hw[0] / h.shape[0], image_hw[1] / h.shape[1]
    return go.Heatmap(
        z=h,
        x0=-0.5 + dx / 2,
        dx=dx,
        y0=-0.5 + dy / 2,
        dy=dy,
        opacity=opacity,
        coloraxis=coloraxis,
        hoverongaps=False,
        hovertemplate="x %{x:.0f}, y %{y:.0f}<br>value %{z:.4g}<extra>" + name + "</extra>",
    )


def coloraxis_layout(scale: Scale, colorbar: dict | None = None, fade_centre: bool = False) -> dict:
    """A ``layout.coloraxis`` dict for ``scale`` (range, colours, colorbar); see :func:`colour_stops` for ``fade_centre``."""
    colours = [[p, f"rgba({r * 255:.0f},{g * 255:.0f},{b * 255:.0f},{a:.3f})"]
               for p, (r, g, b, a) in colour_stops(scale, fade_centre)]
    return dict(
        cmin=scale.zmin,
        cmax=scale.zmax,
        colorscale=colours,
        colorbar={**COLORBAR, **(colorbar or {})},
    )


def _image_axes(fig: go.Figure) -> None:
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", constrain="domain")
    fig.update_layout(yaxis=dict(scaleanchor="x", scaleratio=1))


def photo_figure(img: np.ndarray, title: str | None = None, height: int = 420) -> go.Figure:
    """The photo alone, equal aspect, no axes."""
    fig = go.Figure(photo_trace(img))
    _image_axes(fig)
    return apply_style(fig, title, height)


def overlay_figure(
    img: np.ndarray,
    heat: np.ndarray,
    scale: Scale | None = None,
    opacity: float = 0.5,
    title: str | None = None,
    height: int = 420,
) -> go.Figure:
    """``heat`` over the photo with ``opacity``; hover = x, y, raw value; colorbar titled by ``scale.label``.

    ``scale`` defaults to the map's own (signed if it has negative values). Signed maps fade
    to transparent near 0 (:func:`figures.scales.colour_stops`).
    """
    rgb = as_rgb_uint8(img)
    scale = scale or scale_for([_heat_2d(heat)])[0]
    fig = go.Figure([photo_trace(rgb), heat_trace(heat, rgb.shape[:2], "coloraxis", opacity, html.escape(title or ""))])
    fig.update_layout(coloraxis=coloraxis_layout(scale, dict(title=dict(text=scale.html_label, side="right")), fade_centre=True))
    _image_axes(fig)
    return apply_style(fig, title, height)


def _grid_caption(used: list[Scale], n_maps: int) -> str:
    """A sentence explaining the grid's colour scales, for stakeholders."""
    parts = ["One colour scale shared by all maps." if len(used) == 1 and n_maps > 1 else "Each map has its own colour scale."]
    if any(s.signed for s in used):
        parts.append("Diverging maps: red pushes toward the class, blue away from it; near 0 the photo shows through.")
    if any(not s.signed for s in used):
        parts.append("Sequential maps: dark is 0, bright is strongest.")
    return "<br>".join(parts)


def map_grid(
    img: np.ndarray,
    maps: Sequence[Sequence[np.ndarray | None]],
    row_titles: Sequence[str] | None = None,
    col_titles: Sequence[str] | None = None,
    scales: Scale | Sequence[Sequence[Scale | None]] | None = None,
    opacity: float = 0.5,
    title: str | None = None,
    cell_height: int = 250,
) -> go.Figure:
    """A rows x columns grid of maps over the same photo (e.g. one column per method, one row per class).

    Zoom and pan are linked: every x axis ``matches`` the first, every y axis ``matches``
    the first, and only the first y axis carries the equal-aspect ``scaleanchor`` (the
    combination Plotly supports). ``scales``: one :class:`Scale` shared by all maps (one
    colorbar), a grid of scales (one colorbar beside each map), or ``None`` for each map's
    own. A ``None`` map leaves its cell as a faded photo marked "not computed". A caption
    under the grid explains the scales.
    """
    grid = resolve_grid_scales(maps, scales)
    rows, cols = len(maps), len(maps[0])
    if row_titles is not None and len(row_titles) != rows or col_titles is not None and len(col_titles) != cols:
        raise ExplainerError("Give one title per row and one per column of the map grid.")
    rgb = as_rgb_uint8(img)
    used = distinct(grid)
    per_map = len(used) > 1

    fig = make_subplots(
        rows=rows,
        cols=cols,
        column_titles=[html.escape(t) for t in col_titles] if col_titles else None,
        horizontal_spacing=0.06 if per_map else 0.015,
        vertical_spacing=0.04,
    )
    axis_of = {id(s): f"coloraxis{k + 1 if k else ''}" for k, s in enumerate(used)}
    photo = photo_trace(rgb)
    faded = photo_trace(rgb, opacity=0.35)
    traces, at_rows, at_cols, notes, layout = [], [], [], [], {}
    for i, row in enumerate(maps):
        for j, heat in enumerate(row):
            scale = grid[i][j]
            sub = fig.get_subplot(i + 1, j + 1)
            if heat is None or scale is None:
                traces.append(faded)
                notes.append(dict(text="not computed", showarrow=False, font=dict(color=MUTED), x=rgb.shape[1] / 2,
                                  y=rgb.shape[0] / 2, xref=sub.xaxis.plotly_name.replace("axis", ""),
                                  yref=sub.yaxis.plotly_name.replace("axis", "")))
                at_rows.append(i + 1)
                at_cols.append(j + 1)
                continue
            axis = axis_of[id(scale)]
            name = html.escape(" · ".join(t for t in (row_titles[i] if row_titles else "", col_titles[j] if col_titles else "") if t))
            traces += [photo, heat_trace(heat, rgb.shape[:2], axis, opacity, name)]
            at_rows += [i + 1, i + 1]
            at_cols += [j + 1, j + 1]
            if per_map:
                (_, x1), (y0, y1) = sub.xaxis.domain, sub.yaxis.domain
                cb = dict(x=x1 + 0.004, xanchor="left", y=(y0 + y1) / 2, len=(y1 - y0) * 0.9, thickness=8)
            else:
                cb = dict(title=dict(text=scale.html_label, side="right"))
            layout[axis] = coloraxis_layout(scale, cb, fade_centre=True)
    fig.add_traces(traces, rows=at_rows, cols=at_cols)

    for i, text in enumerate(row_titles or []):
        dom = fig.get_subplot(i + 1, 1).yaxis.domain
        notes.append(dict(text=f"<b>{html.escape(text)}</b>", textangle=-90, showarrow=False, xref="paper", yref="paper",
                          x=-0.01, xanchor="right", y=(dom[0] + dom[1]) / 2, font=dict(size=FONT["size"])))
    caption = _grid_caption(used, sum(m is not None for r in maps for m in r))
    notes.append(dict(text=caption, showarrow=False, align="left", xref="paper", yref="paper", x=0, xanchor="left",
                      y=0, yanchor="top", yshift=-8, font=dict(size=12, color=MUTED)))
    axes = {}
    for k in range(1, rows * cols + 1):
        suffix = str(k) if k > 1 else ""
        axes[f"xaxis{suffix}"] = dict(visible=False, constrain="domain", matches="x" if k > 1 else None)
        axes[f"yaxis{suffix}"] = dict(visible=False, constrain="domain", autorange="reversed",
                                      **(dict(matches="y") if k > 1 else dict(scaleanchor="x", scaleratio=1)))
    fig.update_layout(**layout, **axes, annotations=list(fig.layout.annotations) + notes)
    bottom = 16 + 17 * (caption.count("<br>") + 1)
    apply_style(fig, title, rows * cell_height + 60 + bottom)
    fig.update_layout(margin=dict(l=40 if row_titles else 10, b=bottom))
    return fig


def topk_bar(
    labels: Sequence[str],
    probs: Sequence[float],
    highlight: int | None = None,
    title: str | None = "Top predictions",
) -> go.Figure:
    """Horizontal bars of class probabilities, best at the top; bar ``highlight`` (an index) in the accent colour.

    Rows are positions, not categories, so duplicate class names (ImageNet has some) stay separate.
    """
    p = np.asarray(probs, dtype=float)
    if len(labels) != p.size:
        raise ExplainerError(f"Got {len(labels)} labels for {p.size} probabilities.")
    colours = [ACCENT if i == highlight else "#93b4f5" for i in range(p.size)]
    pos = np.arange(p.size)
    fig = go.Figure(
        go.Bar(
            x=p,
            y=pos,
            orientation="h",
            marker=dict(color=colours),
            text=[f"{v:.1%}" for v in p],
            textposition="outside",
            customdata=list(labels),
            hovertemplate="%{customdata}: %{x:.2%}<extra></extra>",
            cliponaxis=False,
        )
    )
    top = float(np.nanmax(p)) if p.size and np.isfinite(p).any() else 1.0
    fig.update_yaxes(tickvals=pos, ticktext=list(labels), autorange="reversed", showgrid=False)
    fig.update_xaxes(range=[0, max(top, 1e-9) * 1.18], tickformat=".0%", showgrid=True, zeroline=False)
    return apply_style(fig, title, height=60 + 34 * max(p.size, 1))
