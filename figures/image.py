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
import functools
import html
import io
import textwrap
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from explainers.errors import ExplainerError
from figures.grid import (
    CAPTION_LINE_PX,
    COLOURS,
    CONTROLS_PX,
    MAP_PX,
    SIDE_PX,
    colorbar,
    fit_title,
    grid_layout,
    opacity_slider,
    scale_menus,
    scale_relayout,
)
from figures.scales import (
    CLIP,
    GRID_MODES,
    SEQUENTIAL,
    MapKind,
    Scale,
    colour_stops,
    distinct,
    grid_presets,
    resolve_grid_scales,
    scale_for,
)
from figures.style import ACCENT, FONT, MUTED, apply_style

COLORBAR = dict(thickness=12, outlinewidth=0, exponentformat="SI", nticks=5, tickfont=dict(size=11))


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


@functools.lru_cache(maxsize=64)
def _plotly_stops(colorscale: str, signed: bool, fade_centre: bool) -> tuple[tuple[float, str], ...]:
    stops = colour_stops(Scale(0.0, 1.0, colorscale, signed, ""), fade_centre)
    return tuple((p, f"rgba({r * 255:.0f},{g * 255:.0f},{b * 255:.0f},{a:.3f})") for p, (r, g, b, a) in stops)


def coloraxis_layout(scale: Scale, colorbar: dict | None = None, fade_centre: bool = False) -> dict:
    """A ``layout.coloraxis`` dict for ``scale`` (range, colours, colorbar); see :func:`colour_stops` for ``fade_centre``."""
    colours = [list(stop) for stop in _plotly_stops(scale.colorscale, scale.signed, fade_centre)]
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


def _meanings(kinds: Sequence[MapKind], titles: Sequence[str]) -> list[str]:
    """One sentence per kind of colour reading in the grid, naming its columns (from the records' flags)."""
    groups: dict[str, list[str]] = {}
    for kind, name in zip(kinds, titles):
        if kind.against:
            text = "red is evidence against the class, blue for it" if kind.signed else "bright is evidence against the class"
        elif kind.signed:
            text = "red raises the class score, blue lowers it; near 0 the photo shows through"
        else:
            text = "dark is 0, bright is the largest value (each method's caption says what that means)"
        groups.setdefault(text, []).append(name)
    return [f"{', '.join(names)}: {text}." for text, names in groups.items()]


def _scale_sentence(mode: str | None, clipped: bool | None, n_scales: int, n_maps: int) -> str:
    if mode is None:
        return "One colour scale shared by all maps." if n_scales == 1 and n_maps > 1 else "Each map has its own colour scale."
    clip = f" (clipped at the {CLIP:g}th percentile)" if clipped else " (full range)"
    return {
        "own": "Each map has its own colour range" + clip + ".",
        "method": "Each method's maps share one range across the classes" + clip + ".",
        "family": "Maps of one method family and sign (the same units) share one range" + clip + "; others keep their own.",
    }[mode]


def _wrap(lines: Sequence[str], px: float) -> str:
    width = max(40, int(px / 6.6))
    return "<br>".join("<br>".join(textwrap.wrap(html.escape(line, quote=False), width)) for line in lines)


def map_grid(
    img: np.ndarray,
    maps: Sequence[Sequence[np.ndarray | None]],
    row_titles: Sequence[str] | None = None,
    col_titles: Sequence[str] | None = None,
    scales: Scale | Sequence[Sequence[Scale | None]] | None = None,
    opacity: float = 0.5,
    title: str | None = None,
    cell_height: int = MAP_PX,
    *,
    kinds: Sequence[MapKind] | None = None,
    columns: int | None = None,
    mode: tuple[str, bool] = ("own", True),
    colorscale: str = SEQUENTIAL,
    notes: Sequence[Sequence[str | None]] | None = None,
) -> go.Figure:
    """A rows x columns grid of maps over the same photo (e.g. one row per class, one column per method).

    Layout (:mod:`figures.grid`): each map keeps a ``cell_height``-pixel box (at least
    :data:`figures.grid.MAP_PX`); a row with more maps than ``columns`` wraps onto more lines;
    titles above the maps, cut to their width; a thin colour bar under each map; the row's
    title above its block. Zoom and pan are linked (every axis ``matches`` the first; only the
    first y axis carries the equal-aspect ``scaleanchor``).

    Colour: ``scales`` given (one :class:`Scale` or a grid) are drawn as given with an opacity
    slider. Otherwise the figure takes its scales from :func:`figures.scales.grid_presets` over
    ``kinds`` (one :class:`MapKind` per column, from the methods' records; ``None`` reads the sign
    from the data), starting at ``mode`` = (mode, clipped), with dropdowns for the sequential
    ``colorscale`` and the scale preset that act in the browser. A ``None`` map leaves its cell a
    faded photo with ``notes[i][j]`` (default "not computed") written on it. The caption under the
    grid says what the colours mean for each column and how the scales are shared.
    """
    if not maps or not maps[0] or any(len(r) != len(maps[0]) for r in maps):
        raise ExplainerError("The map grid must be a non-empty rectangle (the same number of maps in every row).")
    rows, cols = len(maps), len(maps[0])
    if row_titles is not None and len(row_titles) != rows or col_titles is not None and len(col_titles) != cols:
        raise ExplainerError("Give one title per row and one per column of the map grid.")
    rgb = as_rgb_uint8(img)
    presets = None
    if scales is None:
        presets = grid_presets(maps, kinds, colorscale)
        if mode not in presets:
            raise ExplainerError(f"Unknown scale preset {mode!r}; choose a mode of {', '.join(GRID_MODES)} and clipped or not.")
        grid = presets[mode]
    else:
        grid = resolve_grid_scales(maps, scales)
    layout = grid_layout(rows, cols, rgb.shape[:2], columns, max(cell_height, MAP_PX), headers=row_titles is not None)

    photo = photo_trace(rgb).to_plotly_json()
    faded = photo_trace(rgb, opacity=0.35).to_plotly_json()
    traces, heat_index, notes_out, axes, colour_axes = [], [], [], {}, {}
    axis_names: dict[tuple[int, int], str] = {}
    for k, box in enumerate(layout.boxes):
        i, j = box.row, box.col
        suffix = str(k + 1) if k else ""
        xa, ya = f"x{suffix}", f"y{suffix}"
        axes[f"xaxis{suffix}"] = dict(domain=[layout.fx(box.x0), layout.fx(box.x1)], anchor=ya, visible=False,
                                      range=[-0.5, rgb.shape[1] - 0.5], constrain="domain",
                                      **(dict(matches="x") if k else {}))
        axes[f"yaxis{suffix}"] = dict(domain=[layout.fy(box.y1), layout.fy(box.y0)], anchor=xa, visible=False,
                                      range=[rgb.shape[0] - 0.5, -0.5], constrain="domain",
                                      **(dict(matches="y") if k else dict(scaleanchor="x", scaleratio=1)))
        heat, scale = maps[i][j], grid[i][j]
        name = " · ".join(t for t in (row_titles[i] if row_titles else "", col_titles[j] if col_titles else "") if t)
        if col_titles:
            text, cut = fit_title(col_titles[j], box.x1 - box.x0)
            notes_out.append(dict(text=f"<b>{html.escape(text)}</b>", hovertext=html.escape(col_titles[j]) if cut else None,
                                  showarrow=False, xref="paper", yref="paper", x=layout.fx((box.x0 + box.x1) / 2),
                                  xanchor="center", y=layout.fy(box.y0 - 4), yanchor="bottom", font=dict(size=13)))
        if heat is None or scale is None:
            traces.append({**faded, "xaxis": xa, "yaxis": ya})
            note = (notes[i][j] if notes is not None else None) or "not computed"
            notes_out.append(dict(text=html.escape(note), showarrow=False, font=dict(color="#52606d", size=13),
                                  x=rgb.shape[1] / 2, y=rgb.shape[0] / 2, xref=xa, yref=ya, bgcolor="rgba(255,255,255,0.8)"))
            continue
        axis = f"coloraxis{k + 1 if k else ''}"
        axis_names[i, j] = axis
        heat_index.append(len(traces) + 1)
        traces += [{**photo, "xaxis": xa, "yaxis": ya},
                   {**heat_trace(heat, rgb.shape[:2], axis, opacity, html.escape(name)).to_plotly_json(), "xaxis": xa, "yaxis": ya}]
        colour_axes[axis] = coloraxis_layout(scale, colorbar(layout, box), fade_centre=True)

    for i, y in layout.headers:
        notes_out.append(dict(text=f"<b>{html.escape(row_titles[i])}</b>", showarrow=False, xref="paper", yref="paper",
                              x=0, xanchor="left", y=layout.fy(y), yanchor="bottom", font=dict(size=FONT["size"] + 2)))
    n_maps = sum(m is not None for r in maps for m in r)
    titles = list(col_titles) if col_titles else [f"column {j + 1}" for j in range(cols)]
    meaning = _meanings(kinds if kinds is not None else
                        [MapKind(signed=any(s is not None and s.signed for s in col)) for col in zip(*grid)], titles)
    width = layout.width + 2 * SIDE_PX

    def caption_for(key: tuple[str, bool] | None) -> str:
        mode_name, clipped = key if key else (None, None)
        return _wrap([_scale_sentence(mode_name, clipped, len(distinct(grid)), n_maps), *meaning], layout.width)

    caption = caption_for(mode if presets else None)
    bottom = 14 + CAPTION_LINE_PX * (caption.count("<br>") + 1)
    notes_out.append(dict(text=caption, showarrow=False, align="left", xref="paper", yref="paper", x=0, xanchor="left",
                          y=0, yanchor="top", yshift=-6, font=dict(size=12, color=MUTED)))
    top = CONTROLS_PX + (40 if title else 0)
    fig = go.Figure(data=traces, layout=dict(**colour_axes, **axes, annotations=notes_out))
    if heat_index:
        fig.update_layout(sliders=[opacity_slider(layout, heat_index, opacity)])
    if presets is not None and colour_axes:
        sequential = [(i, j) for (i, j) in axis_names if not grid[i][j].signed]
        stops = {name: {f"{axis_names[c]}.colorscale": [list(s) for s in _plotly_stops(name, False, True)]
                        for c in sequential} for name in dict.fromkeys((colorscale, *COLOURS))}
        relayouts = {key: scale_relayout([(axis_names[c], g[c[0]][c[1]]) for c in axis_names]) for key, g in presets.items()}
        captions = {key: caption_for(key) for key in presets}
        fig.update_layout(updatemenus=scale_menus(layout, stops, relayouts, mode, colorscale, len(notes_out) - 1, captions))
    apply_style(fig, title, int(layout.height + top + bottom))
    fig.update_layout(width=int(width), margin=dict(l=SIDE_PX, r=SIDE_PX, t=top, b=bottom), autosize=False)
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
