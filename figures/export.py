"""Downloads: self-contained interactive HTML, static PNGs (map grid, token heatmaps, layers x
tokens), raw maps as NPZ.

The PNG is drawn with matplotlib (Agg): Plotly's own static export needs kaleido and a
Chrome download, neither available offline here.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import textwrap
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402

from explainers.errors import ExplainerError  # noqa: E402
from figures.image import as_rgb_uint8  # noqa: E402
from figures.scales import Scale, colour_stops, distinct, resolve_grid_scales  # noqa: E402
from figures.style import SPECIAL_TOKEN_COLOUR  # noqa: E402
from figures.text import (  # noqa: E402
    MUTED_TEXT_COLOUR,
    TokenRow,
    layers_tokens_values,
    row_scales,
    text_colours,
    wrap_tokens,
)

HEADER_PX = 40
FOOTER_PX = 16
ROW_TITLE_PX = 40
MARGIN_PX = 8


def to_html(fig: go.Figure) -> str:
    """A complete HTML page with plotly.js inlined (no external script), so it opens offline."""
    return fig.to_html(full_html=True, include_plotlyjs=True, include_mathjax=False,
                       config={"displaylogo": False, "responsive": True})


def maps_npz(maps: Mapping[str, np.ndarray], meta: Mapping | None = None) -> bytes:
    """Raw maps, one array per key, plus ``meta`` as a JSON string under ``"meta"``; loads with ``np.load`` (no pickle)."""
    if "meta" in maps:
        raise ExplainerError("'meta' is reserved for the metadata entry; rename that map.")
    buf = io.BytesIO()
    np.savez_compressed(buf, **{str(k): np.asarray(v) for k, v in maps.items()},
                        meta=np.array(json.dumps(dict(meta or {}), default=str)))
    return buf.getvalue()


def records_csv(records: Sequence[Mapping]) -> str:
    """CSV text of records sharing the first one's keys (a header line, then one line per record),
    quoted by the csv module so tokens with commas, quotes or line breaks survive a round trip."""
    if not records:
        raise ExplainerError("There are no scores to write.")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


def matplotlib_cmap(scale: Scale, fade_centre: bool = False) -> LinearSegmentedColormap:
    """``scale``'s colours as a matplotlib colormap (same stops and alpha as the Plotly figures)."""
    return LinearSegmentedColormap.from_list(scale.colorscale, colour_stops(scale, fade_centre))


def cell_height(cell_px: int, image_hw: tuple[int, int]) -> int:
    """Height in pixels of a grid cell ``cell_px`` wide holding an image of ``image_hw``."""
    return max(1, round(cell_px * image_hw[0] / image_hw[1]))


def grid_png_size(
    rows: int, cols: int, cell_px: int, image_hw: tuple[int, int], per_map_bars: bool, row_titles: bool
) -> tuple[int, int]:
    """(width, height) in pixels of :func:`grid_png`'s image.

    Columns of ``cell_px`` (+ ``cell_px // 4`` for a colorbar beside each map), one shared
    colorbar column of ``cell_px // 3`` otherwise, a left strip for row titles; rows of
    :func:`cell_height`, a header for column titles and a footer.
    """
    bar = cell_px // 4 if per_map_bars else 0
    width = (ROW_TITLE_PX if row_titles else MARGIN_PX) + cols * (cell_px + bar) + (0 if per_map_bars else cell_px // 3)
    return width, HEADER_PX + rows * cell_height(cell_px, image_hw) + FOOTER_PX


CJK_FAMILIES = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Droid Sans Fallback")
"""System fonts with Chinese and Japanese glyphs, tried after DejaVu Sans (scripts/cjk-font.sh installs the first)."""


@functools.cache
def text_families() -> list[str]:
    """DejaVu Sans, then every CJK family of :data:`CJK_FAMILIES` found on this system, as matplotlib's
    fallback list (it takes each glyph from the first font that has it). Fonts installed after matplotlib
    built its font cache are added from the system's font files."""
    from matplotlib import font_manager

    def found() -> set[str]:
        return {f.name for f in font_manager.fontManager.ttflist} & set(CJK_FAMILIES)

    if not found():
        for path in font_manager.findSystemFonts():
            if any(part in path.lower() for part in ("wqy", "cjk", "droidsansfallback")):
                font_manager.fontManager.addfont(path)
    # A bold title asks every family for a bold face; the CJK fonts have none and fall back to regular
    # (fine for their glyphs): that lookup's log line is noise.
    font_manager._log.addFilter(lambda record: "Failed to find font weight" not in record.getMessage())
    return ["DejaVu Sans", *[name for name in CJK_FAMILIES if name in found()]]


def _plain_text(build):
    """Run a PNG builder with mathtext off (a '$' in a token, title or file name is drawn as typed: an
    unbalanced '$\\x$' would otherwise raise) and with :func:`text_families` (CJK glyphs, not boxes)."""

    @functools.wraps(build)
    def wrapped(*args, **kwargs):
        with plt.rc_context({"text.parse_math": False, "font.family": text_families()}):
            return build(*args, **kwargs)

    return wrapped


@_plain_text
def grid_png(
    img: np.ndarray,
    maps: Sequence[Sequence[np.ndarray | None]],
    row_titles: Sequence[str] | None = None,
    col_titles: Sequence[str] | None = None,
    scales: Scale | Sequence[Sequence[Scale | None]] | None = None,
    opacity: float = 0.5,
    cell_px: int = 240,
) -> bytes:
    """PNG bytes of the map grid (the static twin of :func:`figures.image.map_grid`), same scales and layout rules."""
    grid = resolve_grid_scales(maps, scales)
    rows, cols = len(maps), len(maps[0])
    used = distinct(grid)
    per_map = len(used) > 1
    rgb = as_rgb_uint8(img)
    H, W = rgb.shape[:2]
    width, height = grid_png_size(rows, cols, cell_px, (H, W), per_map, bool(row_titles))
    ch = cell_height(cell_px, (H, W))
    dpi = 100
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    left = ROW_TITLE_PX if row_titles else MARGIN_PX
    bar = cell_px // 4 if per_map else 0
    pad = 4

    def box(x: float, y: float, w: float, h: float) -> list[float]:  # pixel box (top-left origin) -> figure fraction
        return [x / width, 1 - (y + h) / height, w / width, h / height]

    mappable = None
    for i in range(rows):
        for j in range(cols):
            x, y = left + j * (cell_px + bar), HEADER_PX + i * ch
            ax = fig.add_axes(box(x + pad, y + pad, cell_px - 2 * pad, ch - 2 * pad))
            ax.set_axis_off()
            heat, scale = maps[i][j], grid[i][j]
            ax.imshow(rgb, alpha=1.0 if heat is not None else 0.35)
            if i == 0 and col_titles:
                ax.set_title(col_titles[j], fontsize=11, pad=6)
            if j == 0 and row_titles:
                fig.text(x / width - 0.004, 1 - (y + ch / 2) / height, row_titles[i], rotation=90,
                         ha="right", va="center", fontsize=11, fontweight="bold")
            if heat is None or scale is None:
                ax.text(W / 2, H / 2, "not computed", ha="center", va="center", color="#7b8794", fontsize=10)
                continue
            mappable = ax.imshow(np.asarray(heat, dtype=float), cmap=matplotlib_cmap(scale, fade_centre=True),
                                 vmin=scale.zmin, vmax=scale.zmax, alpha=opacity, interpolation="nearest",
                                 extent=(-0.5, W - 0.5, H - 0.5, -0.5))
            if per_map:
                cax = fig.add_axes(box(x + cell_px - 2, y + ch * 0.1, 8, ch * 0.8))
                cb = fig.colorbar(mappable, cax=cax)
                cb.solids.set_alpha(1)  # the bar shows the colours, not the overlay's transparency
                cb.ax.tick_params(labelsize=7)
    if mappable is not None and not per_map:
        x0 = left + cols * cell_px + 6
        cax = fig.add_axes(box(x0, HEADER_PX + rows * ch * 0.15, 10, rows * ch * 0.7))
        cb = fig.colorbar(mappable, cax=cax)
        cb.solids.set_alpha(1)
        cb.ax.tick_params(labelsize=8)
        cb.set_label(used[0].label.replace("\n", ", "), fontsize=8)
    return _png(fig)


TOKEN_LINE_PX = 30
TOKEN_CHAR_PX = 9
TOKEN_TITLE_PX = 30
COLORBAR_STRIP_PX = 170
TITLE_LINE_PX = 20
TITLE_CHAR_PX = 9.5
"""Width of one character of the 12 pt bold figure title, generously."""
BAR_PX, BAR_TICKS_PX = 10, 48
"""A row's colour bar: its width, and the room its tick labels take before its label starts."""


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, facecolor="white")
    plt.close(fig)
    return buf.getvalue()


def _colorbar(fig: plt.Figure, cax: plt.Axes, scale: Scale, label_beside: bool = False) -> None:
    """A colour bar of ``scale`` in ``cax``: its label rotated along the bar, or (``label_beside``, for a
    short bar) as horizontal lines beside its tick labels, so neighbouring bars' labels never meet."""
    from matplotlib.ticker import EngFormatter, FuncFormatter, MaxNLocator

    mappable = plt.cm.ScalarMappable(plt.Normalize(scale.zmin, scale.zmax), matplotlib_cmap(scale))
    bar = fig.colorbar(mappable, cax=cax)
    bar.ax.tick_params(labelsize=8)
    if not label_beside:
        bar.set_label(scale.label.replace("\n", ", "), fontsize=8)
        return
    eng = EngFormatter(sep="")  # short ticks for tiny or huge values: 150µ, not 0.00015
    bar.locator = MaxNLocator(3)
    bar.formatter = FuncFormatter(lambda v, _: f"{v:.4g}" if v == 0 or 1e-2 <= abs(v) < 1e4 else eng(v))
    bar.update_ticks()
    cax.text(1 + BAR_TICKS_PX / BAR_PX, 1, scale.label, transform=cax.transAxes, ha="left", va="top", fontsize=7.5,
             linespacing=1.15, color=MUTED_TEXT_COLOUR)


def token_rows_figure(
    rows: Sequence[TokenRow],
    scale: Scale | Sequence[Scale] | None = None,
    shared: bool = True,
    signed: bool | Sequence[bool] | None = None,
    width: int = 80,
    title: str = "",
) -> plt.Figure:
    """The matplotlib figure of :func:`token_rows_png` (open: the caller saves or closes it)."""
    rows = [r.checked() for r in rows]
    scales = row_scales(rows, scale, shared, signed)
    layouts = [wrap_tokens(r.tokens, width) for r in rows]
    heights = [TOKEN_TITLE_PX + r.lines(width) * TOKEN_LINE_PX for r in rows]
    text_px = width * TOKEN_CHAR_PX
    total_w = MARGIN_PX * 2 + text_px + COLORBAR_STRIP_PX
    title_lines = textwrap.wrap(title, max(20, int((total_w - 2 * MARGIN_PX) / TITLE_CHAR_PX)))
    header = len(title_lines) * TITLE_LINE_PX + (8 if title_lines else 0)
    total_h = header + sum(heights) + 2 * MARGIN_PX
    dpi = 100
    fig = plt.figure(figsize=(total_w / dpi, total_h / dpi), dpi=dpi)
    if title_lines:
        fig.text(MARGIN_PX / total_w, 1 - MARGIN_PX / total_h, "\n".join(title_lines), ha="left", va="top",
                 fontsize=12, fontweight="bold", linespacing=1.25)
    top = MARGIN_PX + header
    for row, sc, (lines, starts, widths), height in zip(rows, scales, layouts, heights):
        ax = fig.add_axes([MARGIN_PX / total_w, 1 - (top + height) / total_h, text_px / total_w, height / total_h])
        ax.set_xlim(0, width)
        ax.set_ylim((height - TOKEN_TITLE_PX) / TOKEN_LINE_PX - 0.5, -TOKEN_TITLE_PX / TOKEN_LINE_PX - 0.5)
        ax.set_axis_off()
        ax.text(0, -TOKEN_TITLE_PX / TOKEN_LINE_PX / 2 - 0.5, row.title, fontsize=11, fontweight="bold", va="center")
        cmap, special = matplotlib_cmap(sc), row.special_mask()
        ink = text_colours(row.scores, sc)
        for i, token in enumerate(row.tokens):
            t = 0.0 if sc.zmax == sc.zmin else float(np.clip((row.scores[i] - sc.zmin) / (sc.zmax - sc.zmin), 0, 1))
            face = SPECIAL_TOKEN_COLOUR if special[i] else cmap(t)
            ax.add_patch(plt.Rectangle((starts[i], lines[i] - 0.41), widths[i] - 0.15, 0.82, facecolor=face, linewidth=0))
            ax.text(starts[i] + (widths[i] - 0.15) / 2, lines[i], token, ha="center", va="center", fontsize=10,
                    color=MUTED_TEXT_COLOUR if special[i] else ink[i])
        if row.note:
            ax.text(0, row.token_lines(width), row.note, fontsize=9, va="center", color=MUTED_TEXT_COLOUR)
        top += height
    top = MARGIN_PX + header
    for i, (sc, height) in enumerate(zip(scales, heights)):
        if i > 0 and sc is scales[i - 1]:
            top += height
            continue
        span = sum(heights[i:]) if all(s is sc for s in scales[i:]) else height
        cax = fig.add_axes([(MARGIN_PX + text_px + 12) / total_w, 1 - (top + span * 0.83) / total_h,
                            BAR_PX / total_w, span * 0.66 / total_h])  # room for the end ticks' half height
        _colorbar(fig, cax, sc, label_beside=True)
        top += height
    return fig


@_plain_text
def token_rows_png(
    rows: Sequence[TokenRow],
    scale: Scale | Sequence[Scale] | None = None,
    shared: bool = True,
    signed: bool | Sequence[bool] | None = None,
    width: int = 80,
    title: str = "",
) -> bytes:
    """PNG bytes of token heatmap rows (the static twin of :func:`figures.text.token_heatmap_rows`):
    same wrapping, scales, colours, special-token grey and row notes; a colour bar per distinct scale
    with its label beside it; ``title`` (what the rows explain: model, class) above, wrapped."""
    return _png(token_rows_figure(rows, scale, shared, signed, width, title))


@_plain_text
def layers_tokens_png(
    scores: np.ndarray,
    tokens: Sequence[str],
    layer_labels: Sequence[str] | None = None,
    normalise: str = "global",
    signed: bool | None = None,
    title: str = "",
) -> bytes:
    """PNG bytes of a layers x tokens heatmap (the static twin of
    :func:`figures.text.layers_tokens_heatmap`: same values, scale and first layer at the bottom)."""
    _, labels, z, scale = layers_tokens_values(scores, tokens, layer_labels, normalise, signed)
    dpi = 100
    fig = plt.figure(figsize=(max(4.0, 0.32 * len(tokens) + 3.0), max(2.5, 0.32 * len(labels) + 1.8)), dpi=dpi)
    ax = fig.add_axes([0.16, 0.3, 0.68, 0.6])
    ax.imshow(z, cmap=matplotlib_cmap(scale), vmin=scale.zmin, vmax=scale.zmax, aspect="auto",
              interpolation="nearest", origin="lower")
    ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    if title:  # wrapped to the figure's width (centred over the axes, which sit in the middle)
        ax.set_title("\n".join(textwrap.wrap(title, int(0.95 * fig.get_figwidth() * dpi / 7))), fontsize=10)
    _colorbar(fig, fig.add_axes([0.86, 0.3, 0.02, 0.6]), scale)
    return _png(fig)
