"""The pixel layout of a map grid and its in-figure display controls.

Layout: every map keeps a fixed box (``map_px`` on its longer side, 240 by default); a row of
the grid (one target) that has more maps than ``columns`` wraps onto further lines instead of
shrinking them. Above each map sits its title (cut with an ellipsis to the map's width, the
full text on hover), under it a thin horizontal colour bar with SI-prefixed ticks; each
target's block starts with its name. Positions are computed in pixels and converted to
Plotly's paper fractions, so nothing depends on the browser's width: the figure has a fixed
``width`` and the page shows it at that size.

Controls: opacity (a slider restyling the heatmaps), the sequential colour scale and the scale
mode x clipping (dropdowns relaying out every colour axis) run in the browser, with no round
trip to Python: a display change costs one Plotly redraw. A colour or scale change makes Plotly
recolour every heatmap cell in JavaScript and re-encode each map as a PNG (measured in Chromium on
a 3 x 8 grid: about half of the redraw), so :func:`display_map` draws maps upsampled from a coarse
layer grid at half resolution (a quarter of the cells).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from figures.scales import CLIP, GRID_MODES, Scale

MAP_PX = 240
GAP_PX = 20
TITLE_PX = 24
BAR_PX = 46
HEADER_PX = 30
CONTROLS_PX = 92
SIDE_PX = 12
CAPTION_LINE_PX = 17
MIN_WIDTH_PX = 700
"""The controls band needs this much width, however few maps there are."""
CHAR_PX = 7.6
"""Width of one character of a 13 px bold title, generously (Inter/Arial average about 7 px)."""
COLOURS = ("Inferno", "Viridis", "Cividis", "Hot", "Greys")
OPACITIES = tuple(round(0.05 * k, 2) for k in range(21))
SMOOTH_FACTOR = 8
"""A map upsampled at least this many times from its layer grid is smooth enough to draw at half resolution."""


def display_map(heat: np.ndarray | None, raw: np.ndarray | None) -> np.ndarray | None:
    """``heat`` as the grid draws it: every second row and column when it is ``raw`` (a layer grid)
    upsampled at least :data:`SMOOTH_FACTOR` times along both sides with even sizes, else ``heat``.

    Every kept value is one of the map's own (no resampling); each drawn cell covers 2 x 2 photo
    pixels. Between neighbouring kept values a bilinear upsample changes by at most 2 / factor of a
    layer cell's step (1/4 at 8x, 1/16 at 7 -> 224), which is invisible at 240 px; pixel-level maps
    (gradients, perturbations without a layer grid) are always drawn in full.
    """
    if heat is None or raw is None:
        return heat
    h, r = np.asarray(heat), np.asarray(raw)
    if h.ndim != 2 or r.ndim != 2 or h.shape[0] % 2 or h.shape[1] % 2:
        return heat
    if h.shape[0] < SMOOTH_FACTOR * r.shape[0] or h.shape[1] < SMOOTH_FACTOR * r.shape[1]:
        return heat
    return h[::2, ::2]


@dataclass(frozen=True)
class Box:
    """One map's box in pixels from the plot area's top-left corner, and its place in the grid."""

    row: int
    col: int
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class GridLayout:
    """Where every map of a rows x columns grid goes, and the plot area's size in pixels."""

    boxes: list[Box]
    headers: list[tuple[int, float]]
    """(row, y of its header's baseline) for every row block."""
    width: float
    height: float

    def fx(self, x: float) -> float:
        """Pixels from the plot area's left edge as a paper fraction."""
        return x / self.width

    def fy(self, y: float) -> float:
        """Pixels from the plot area's top edge as a paper fraction (paper y grows upwards)."""
        return 1.0 - y / self.height


def grid_layout(rows: int, cols: int, image_hw: tuple[int, int], columns: int | None = None,
                map_px: int = MAP_PX, headers: bool = True) -> GridLayout:
    """Boxes for ``rows`` x ``cols`` maps of a photo of ``image_hw``, at most ``columns`` per line.

    The map box keeps the photo's aspect ratio with ``map_px`` on its longer side. Each grid row
    takes ``ceil(cols / columns)`` lines, each line a title band, the maps and a colour-bar band.
    """
    per_line = max(1, min(cols, columns or cols))
    h, w = image_hw
    mw, mh = (map_px, map_px * h / w) if w >= h else (map_px * w / h, map_px)
    pitch = mw + GAP_PX
    lines = math.ceil(cols / per_line)
    boxes, header_at, y = [], [], 0.0
    for i in range(rows):
        if headers:
            header_at.append((i, y + HEADER_PX - 8))
            y += HEADER_PX
        for line in range(lines):
            y += TITLE_PX
            for k, j in enumerate(range(line * per_line, min(cols, (line + 1) * per_line))):
                boxes.append(Box(i, j, k * pitch, y, k * pitch + mw, y + mh))
            y += mh + BAR_PX
    return GridLayout(boxes, header_at, max(per_line * pitch - GAP_PX, MIN_WIDTH_PX), y)


def fit_title(text: str, px: float) -> tuple[str, bool]:
    """``text`` cut with an ellipsis to fit ``px`` pixels of a 13 px bold title; whether it was cut."""
    room = max(4, int(px // CHAR_PX))
    return (text, False) if len(text) <= room else (text[: room - 1].rstrip() + "…", True)


def colorbar(layout: GridLayout, box: Box) -> dict:
    """A thin horizontal colour bar under ``box``, as long as the map, ticks in SI notation (k, m, µ)."""
    return dict(orientation="h", x=layout.fx((box.x0 + box.x1) / 2), xanchor="center", y=layout.fy(box.y1 + 5),
                yanchor="top", len=box.x1 - box.x0, lenmode="pixels", thickness=8, outlinewidth=0, xpad=0, ypad=0,
                exponentformat="SI", nticks=4, ticks="outside", ticklen=3, tickfont=dict(size=10))


def scale_relayout(axes: Sequence[tuple[str, Scale]]) -> dict:
    """``Plotly.relayout`` arguments that set each named colour axis to its scale's range."""
    out = {}
    for name, scale in axes:
        out[f"{name}.cmin"] = scale.zmin
        out[f"{name}.cmax"] = scale.zmax
    return out


def band_top(layout: GridLayout) -> float:
    """Paper y of the controls band's top edge (above the plot area)."""
    return 1 + (CONTROLS_PX - 14) / layout.height


def opacity_slider(layout: GridLayout, heat_traces: Sequence[int], opacity: float) -> dict:
    """A ``layout.sliders`` entry whose steps restyle the opacity of ``heat_traces`` (0 to 1 by 0.05)."""
    steps = [dict(label=f"{v:.2f}", method="restyle", args=[{"opacity": v}, list(heat_traces)]) for v in OPACITIES]
    nearest = min(range(len(OPACITIES)), key=lambda k: abs(OPACITIES[k] - opacity))
    return dict(active=nearest, steps=steps, x=layout.fx(450), xanchor="left", len=220, lenmode="pixels",
                y=band_top(layout) + 8 / layout.height, yanchor="top", pad=dict(t=0, b=0),
                currentvalue=dict(prefix="Map opacity: ", font=dict(size=12, color="#1f2933"), offset=4), tickwidth=0,
                ticklen=0, font=dict(size=1, color="rgba(0,0,0,0)"), minorticklen=0, name="opacity")


def scale_menus(
    layout: GridLayout,
    colour_axes: dict[str, dict],
    scale_axes: dict[tuple[str, bool], dict],
    mode: tuple[str, bool],
    colorscale: str,
    caption_index: int,
    captions: dict[tuple[str, bool], str],
) -> list[dict]:
    """``layout.updatemenus``: the sequential colour scale and the scale preset, as relayout dropdowns.

    ``colour_axes[name]``: relayout arguments giving every sequential axis colour scale ``name``;
    ``scale_axes[(mode, clipped)]``: relayout arguments of that preset; ``captions``: the scale
    sentence of each preset, written into annotation ``caption_index``.
    """
    menu = dict(type="dropdown", direction="down", yanchor="top", y=band_top(layout), xanchor="left", showactive=True,
                bgcolor="white", bordercolor="#cbd2d9", font=dict(size=12), pad=dict(r=4, t=0))
    colour_buttons = [dict(label=f"Colours: {name}", method="relayout", args=[stops]) for name, stops in colour_axes.items()]
    presets = list(scale_axes)
    scale_buttons = []
    for key in presets:
        name, clipped = key
        args = {**scale_axes[key], f"annotations[{caption_index}].text": captions[key]}
        scale_buttons.append(dict(label=f"Scale: {GRID_MODES[name]}, " + (f"clipped p{CLIP:g}" if clipped else "full range"),
                                  method="relayout", args=[args]))
    colour_menu = [{**menu, "x": 0.0, "buttons": colour_buttons, "active": list(colour_axes).index(colorscale)}]
    return [*(colour_menu if any(colour_axes.values()) else []),  # no sequential map, no colour choice
            {**menu, "x": layout.fx(170), "buttons": scale_buttons, "active": presets.index(mode)}]
