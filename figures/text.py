"""Text figures: token heatmaps that read like text, layers x tokens, attention matrices.

Token strings are HTML-escaped before Plotly sees them ("<s>" would otherwise render as
markup). Axes over tokens are numeric with tick labels, never categorical, so a token that
occurs twice keeps two columns.
"""

from __future__ import annotations

import html
import math
import unicodedata
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go

from explainers.errors import ExplainerError
from figures.image import coloraxis_layout
from figures.scales import DIVERGING, SEQUENTIAL, Scale, scale_for
from figures.style import SPECIAL_TOKEN_COLOUR, apply_style, style_layout, unvalidated_figure

LINE_PX = 30
ROW_TITLE_PX = 34
COLORBAR_PX = 150
MUTED_TEXT_COLOUR = "#52606d"
"""Grey for the text of special tokens and row notes."""


@dataclass(frozen=True)
class TokenRow:
    """One row of a token heatmap: a method's (or a text's) scores over its tokens.

    ``words[i]`` is the word token ``i`` belongs to (shown on hover); ``special[i]`` marks
    tokens such as [CLS]/[SEP], drawn grey and left out of automatic scales; ``note`` (e.g.
    IG's convergence delta) is written on a line of its own under the row's tokens.
    """

    title: str
    tokens: Sequence[str]
    scores: np.ndarray
    words: Sequence[str] | None = None
    special: Sequence[bool] | None = None
    note: str = ""

    def checked(self) -> TokenRow:
        """Validated copy with ``scores`` as a float (T,) array."""
        s = np.asarray(self.scores, dtype=float).reshape(-1)
        n = len(self.tokens)
        if s.size != n or (self.words is not None and len(self.words) != n) or (self.special is not None and len(self.special) != n):
            raise ExplainerError(f"Row {self.title!r}: tokens, scores, words and special flags must have the same length.")
        return TokenRow(self.title, list(self.tokens), s, self.words, self.special, self.note)

    def special_mask(self) -> np.ndarray:
        return np.zeros(len(self.tokens), bool) if self.special is None else np.asarray(self.special, bool)

    def token_lines(self, width: int) -> int:
        """Lines the tokens take when wrapped at ``width`` characters (at least 1)."""
        return int(wrap_tokens(self.tokens, width)[0].max()) + 1 if len(self.tokens) else 1

    def lines(self, width: int) -> int:
        """Lines the row takes: its tokens, plus one for the note."""
        return self.token_lines(width) + bool(self.note)


def text_columns(text: str) -> int:
    """Columns ``text`` takes in a monospaced layout: 2 for a wide or full-width character
    (Unicode East Asian Width W or F: CJK ideographs, kana, full-width punctuation), 1 otherwise."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap_tokens(tokens: Sequence[str], width: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lay tokens out like text: greedy line filling, ``width`` characters per line.

    Token ``i`` takes ``max(columns, 1) + 1`` columns (one for the gap), a wide (CJK) character
    counting two (:func:`text_columns`): a Chinese token's glyphs fit its box. Returns per-token
    ``(line, start column, columns)``; order is preserved (row-major). A token longer than
    ``width`` gets a line of its own.
    """
    if width < 2:
        raise ExplainerError("The token line width must be at least 2 characters.")
    line, col = 0, 0
    lines, starts, widths = [], [], []
    for tok in tokens:
        w = max(text_columns(tok), 1) + 1
        if col > 0 and col + w > width:
            line, col = line + 1, 0
        lines.append(line)
        starts.append(col)
        widths.append(w)
        col += w
    return np.array(lines, int), np.array(starts, float), np.array(widths, float)


def _scale_rgb(values: np.ndarray, scale: Scale) -> list[tuple[float, float, float]]:
    """Each value's colour under ``scale`` as (r, g, b) in [0, 1]: linear in RGB between the colour
    scale's stops, clamped to [zmin, zmax] (as Plotly maps a colour axis); NaN takes zmin's colour."""
    t = np.clip((np.nan_to_num(values, nan=scale.zmin) - scale.zmin) / (scale.zmax - scale.zmin), 0, 1)
    return pcolors.sample_colorscale(scale.colorscale, list(t), colortype="tuple")


def _ink(rgb: tuple[float, float, float]) -> str:
    r, g, b = rgb
    return "#111111" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#ffffff"


def text_colours(values: np.ndarray, scale: Scale) -> list[str]:
    """Black or white, whichever reads better on each value's colour under ``scale``."""
    return [_ink(c) for c in _scale_rgb(values, scale)]


def _colour_carrier(scale: Scale, coloraxis: str, suffix: str) -> dict:
    """An invisible two-point trace on ``coloraxis`` (its range's ends): Plotly draws a colour axis's
    bar only for a trace with numeric colours on it, and the token bars carry their colours as strings
    (plotly.js 4 warns, with a stack trace each, for every bar of a numerically coloured bar trace: about
    half of a 6 x 70-token redraw in Chromium)."""
    return dict(type="scatter", xaxis=f"x{suffix}", yaxis=f"y{suffix}", x=[0, 0], y=[0, 0], mode="markers",
                marker=dict(color=[scale.zmin, scale.zmax], coloraxis=coloraxis, opacity=0, size=1),
                hoverinfo="skip", showlegend=False)


def _row_traces(row: TokenRow, scale: Scale, width: int, suffix: str) -> list[dict]:
    """The row's bar traces (ordinary tokens coloured by score under ``scale``, special ones grey) as
    plain dicts on axes ``x{suffix}``/``y{suffix}``, validated once with the whole figure."""
    lines, starts, widths = wrap_tokens(row.tokens, width)
    special = row.special_mask()
    shown = [html.escape(t) for t in row.tokens]
    words = [html.escape(w) for w in (row.words if row.words is not None else row.tokens)]
    word = "  (word: %{customdata[1]})" if row.words is not None else ""
    hover = "<b>%{customdata[0]}</b>" + word + "<br>score %{customdata[2]:.4g} %{customdata[3]}<extra>" + html.escape(row.title) + "</extra>"
    traces = []
    for mask, is_special in ((~special, False), (special, True)):
        if not mask.any():
            continue
        index = np.flatnonzero(mask)
        rgb = None if is_special else _scale_rgb(row.scores[mask], scale)
        traces.append(
            dict(
                type="bar",
                xaxis=f"x{suffix}",
                yaxis=f"y{suffix}",
                orientation="h",
                base=starts[mask],
                x=widths[mask] - 0.15,
                y=lines[mask],
                width=0.82,
                marker=dict(color=SPECIAL_TOKEN_COLOUR) if is_special else dict(
                    color=[f"rgb({255 * r:.0f},{255 * g:.0f},{255 * b:.0f})" for r, g, b in rgb], line=dict(width=0)),
                text=[shown[i] for i in index],
                textposition="inside",
                insidetextanchor="middle",
                textangle=0,
                textfont=dict(color=MUTED_TEXT_COLOUR if is_special else [_ink(c) for c in rgb]),
                customdata=[[shown[i], words[i], float(row.scores[i]), "special token" if is_special else ""]
                            for i in index],
                hovertemplate=hover,
                showlegend=False,
            )
        )
    return traces


def row_scales(rows: Sequence[TokenRow], scale: Scale | Sequence[Scale] | None, shared: bool,
               signed: bool | Sequence[bool] | None, groups: Sequence[Hashable] | None = None) -> list[Scale]:
    """One :class:`Scale` per row: ``scale`` as given (one for all, or one each), or computed from
    the rows' non-special scores (if ``shared``, one scale shared by all rows, or by the rows of each
    of ``groups``, e.g. the methods' families; else one per row; ``signed``: ``None`` detects it from
    the data, a bool applies to all rows, a sequence is per row)."""
    if not rows:
        raise ExplainerError("No token rows to draw.")
    if scale is None:
        return scale_for([r.scores[~r.special_mask()] for r in rows], "shared" if shared else "per_map", signed,
                         quantity="score", groups=groups)
    if isinstance(scale, Scale):
        return [scale] * len(rows)
    if len(scale) != len(rows):
        raise ExplainerError(f"Got {len(scale)} scales for {len(rows)} token rows.")
    return list(scale)


def token_heatmap_rows(
    rows: Sequence[TokenRow],
    scale: Scale | Sequence[Scale] | None = None,
    shared: bool = True,
    signed: bool | Sequence[bool] | None = None,
    width: int = 80,
    title: str | None = None,
    groups: Sequence[Hashable] | None = None,
) -> go.Figure:
    """Rows of token heatmaps stacked vertically (methods one per row, or two texts to compare).

    Each row reads like text: tokens in order, wrapped at ``width`` characters, each a box
    coloured by its score; hover = token, word, raw score; the row's note on a line below.
    ``scale``: one :class:`Scale` for all rows, one per row, or ``None`` to compute one from
    the non-special scores (:func:`row_scales`).
    """
    rows = [r.checked() for r in rows]
    scales = row_scales(rows, scale, shared, signed, groups)
    heights = [r.lines(width) * LINE_PX for r in rows]
    plot_px = sum(heights) + ROW_TITLE_PX * (len(rows) - 1)
    gap = ROW_TITLE_PX / plot_px if len(rows) > 1 else 0.0
    one_scale = len({id(s) for s in scales}) == 1
    # One layout dict, validated once with the data (no make_subplots and per-row updates, each of which
    # validates again): a display change redraws this figure.
    data, titles, notes, layout = [], [], [], {}
    axes: dict[int, str] = {}
    top = 1.0
    for i, (row, sc) in enumerate(zip(rows, scales)):
        suffix = "" if i == 0 else str(i + 1)
        dom = [max(0.0, top - heights[i] / sum(heights) * (1 - gap * (len(rows) - 1))), top]
        top = dom[0] - gap
        layout[f"xaxis{suffix}"] = dict(anchor=f"y{suffix}", domain=[0.0, 1.0], visible=False, range=[0, width],
                                        fixedrange=True)
        layout[f"yaxis{suffix}"] = dict(anchor=f"x{suffix}", domain=dom, visible=False, fixedrange=True,
                                        range=[row.lines(width) - 0.5, -0.5])
        data += _row_traces(row, sc, width, suffix)
        titles.append(dict(text=html.escape(row.title), x=0, xanchor="left", xref="paper", y=dom[1], yref="paper",
                           yanchor="bottom", showarrow=False, font=dict(size=13)))
        if row.note:
            notes.append(dict(x=0, y=row.token_lines(width), xanchor="left", text=html.escape(row.note), showarrow=False,
                              font=dict(size=11, color=MUTED_TEXT_COLOUR), xref=f"x{suffix}", yref=f"y{suffix}"))
        if id(sc) in axes:  # a scale shared with an earlier row: its colour bar is beside that row
            continue
        axes[id(sc)] = axis = "coloraxis" if not axes else f"coloraxis{len(axes) + 1}"
        if one_scale:
            cb = dict(title=dict(text=sc.html_label, side="right"), len=COLORBAR_PX, lenmode="pixels", y=1, yanchor="top")
        else:  # beside its row, stretched over half the title gap; 5 ticks where they fit (~20 px each), else 3
            length = heights[i] + ROW_TITLE_PX // 2
            cb = dict(y=(dom[0] + dom[1]) / 2, yanchor="middle", len=length, lenmode="pixels",
                      thickness=10, nticks=5 if length >= 100 else 3, tickfont=dict(size=10))
        layout[axis] = coloraxis_layout(sc, cb)
        data.append(_colour_carrier(sc, axis, suffix))
    top, bottom = ROW_TITLE_PX + (45 if title else 0), max(10, COLORBAR_PX - plot_px + 10)
    style = style_layout(title, height=plot_px + top + bottom)
    layout.update(style, margin={**style["margin"], "t": top, "b": bottom}, annotations=titles + notes,
                  barmode="overlay", uniformtext=dict(minsize=11, mode="show"), bargap=0)
    return unvalidated_figure(data, layout)


def token_heatmap(
    tokens: Sequence[str],
    scores: np.ndarray,
    scale: Scale | None = None,
    words: Sequence[str] | None = None,
    special: Sequence[bool] | None = None,
    width: int = 80,
    title: str | None = None,
) -> go.Figure:
    """One token heatmap; see :func:`token_heatmap_rows`."""
    return token_heatmap_rows([TokenRow("", tokens, scores, words, special)], scale, width=width, title=title)


def normalise_rows(scores: np.ndarray, signed: bool) -> np.ndarray:
    """Each row divided by its largest ``|value|`` (signed, to [-1, 1]) or largest value (to [0, 1]); zero rows stay 0."""
    s = np.asarray(scores, dtype=float)
    peak = np.nanmax(np.abs(s) if signed else s, axis=1, keepdims=True, initial=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(peak > 0, s / np.where(peak > 0, peak, 1.0), 0.0 * s)


def _token_axis(tokens: Sequence[str]) -> dict:
    return dict(tickvals=list(range(len(tokens))), ticktext=[html.escape(t) for t in tokens],
                tickangle=-50 if len(tokens) > 12 else 0, tickfont=dict(size=11 if len(tokens) > 30 else 12),
                showgrid=False, zeroline=False)


def layers_tokens_values(
    scores: np.ndarray,
    tokens: Sequence[str],
    layer_labels: Sequence[str] | None,
    normalise: Literal["global", "row"],
    signed: bool | None,
) -> tuple[np.ndarray, list[str], np.ndarray, Scale]:
    """(raw scores, layer labels, the values drawn, their Scale) of a layers x tokens heatmap;
    shared by :func:`layers_tokens_heatmap` and its PNG twin."""
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.shape[1] != len(tokens):
        raise ExplainerError(f"Expected scores of shape (layers, {len(tokens)}), got {s.shape}.")
    labels = list(layer_labels) if layer_labels is not None else [f"layer {i + 1}" for i in range(s.shape[0])]
    if len(labels) != s.shape[0]:
        raise ExplainerError(f"Got {len(labels)} layer labels for {s.shape[0]} layers.")
    is_signed = bool(np.nanmin(s, initial=0.0) < 0) if signed is None else signed
    if normalise == "row":
        sc = Scale(-1.0 if is_signed else 0.0, 1.0, DIVERGING if is_signed else SEQUENTIAL, is_signed,
                   "score / row peak\n" + ("red + / blue −" if is_signed else "per-row scale"))
        return s, labels, normalise_rows(s, is_signed), sc
    if normalise == "global":
        return s, labels, s, scale_for([s], "shared", is_signed, quantity="score")[0]
    raise ExplainerError(f"Unknown normalisation {normalise!r}; choose 'global' or 'row'.")


TOKENS_PER_LINE = 36
"""A layers x tokens heatmap wraps after this many tokens (at about 1000 px, 27 px a token column)."""
LAYER_ROW_PX = 26
TOKEN_TICKS_PX = 80


def layers_tokens_heatmap(
    scores: np.ndarray,
    tokens: Sequence[str],
    layer_labels: Sequence[str] | None = None,
    normalise: Literal["global", "row"] = "global",
    signed: bool | None = None,
    title: str | None = None,
    per_line: int = TOKENS_PER_LINE,
) -> go.Figure:
    """Layers x tokens heatmap (e.g. per-layer Grad-CAM): rows = layers, the first at the bottom.

    ``normalise="row"`` divides each row by its peak (:func:`normalise_rows`) to compare
    where each layer looks; ``"global"`` keeps one scale for all. Hover always shows the raw
    score with its layer and token. ``signed=None`` detects sign from the data. A text of more
    than ``per_line`` tokens wraps: the tokens continue in a further block of the same layers
    (one colour axis for all), so every token column keeps a readable width and tick label.
    """
    s, labels, z, sc = layers_tokens_values(scores, tokens, layer_labels, normalise, signed)
    if per_line < 1:
        raise ExplainerError("A layers x tokens heatmap needs at least one token per line.")
    tok = [html.escape(t) for t in tokens]
    n = max(len(tokens), 1)
    per_line = math.ceil(n / math.ceil(n / per_line))  # blocks of even length: 73 tokens -> 25 + 24 + 24
    blocks = [(a, min(a + per_line, n)) for a in range(0, n, per_line)]
    block_px = LAYER_ROW_PX * len(labels) + TOKEN_TICKS_PX
    plot_px = block_px * len(blocks)
    wrapped = len(blocks) > 1
    data, layout = [], {}
    for k, (a, b) in enumerate(blocks):  # one block of layer rows per line of tokens, one axis pair each
        suffix = str(k + 1) if k else ""
        data.append(dict(
            type="heatmap", z=z[:, a:b], x=list(range(a, b)), coloraxis="coloraxis", xgap=1, ygap=1,
            customdata=[[[labels[i], tok[j], s[i, j]] for j in range(a, b)] for i in range(s.shape[0])],
            hovertemplate="%{customdata[0]} · <b>%{customdata[1]}</b><br>score %{customdata[2]:.4g}<extra></extra>",
            xaxis=f"x{suffix}", yaxis=f"y{suffix}"))
        top = 1 - k * block_px / plot_px  # the block's heatmap takes its layer rows; its tick labels fill the rest
        layout[f"xaxis{suffix}"] = dict(_token_axis(tokens[a:b]), tickvals=list(range(a, b)), anchor=f"y{suffix}",
                                        domain=[0.0, 1.0], fixedrange=wrapped,
                                        **(dict(range=[a - 0.5, a + per_line - 0.5]) if wrapped else {}))
        layout[f"yaxis{suffix}"] = dict(tickvals=list(range(len(labels))), ticktext=labels, showgrid=False,
                                        zeroline=False, anchor=f"x{suffix}",
                                        domain=[top - LAYER_ROW_PX * len(labels) / plot_px, top])
    layout["coloraxis"] = coloraxis_layout(sc, dict(title=dict(text=sc.html_label, side="right"),
                                                    len=min(1.0, 260 / plot_px), y=1, yanchor="top"))
    return unvalidated_figure(data, {**layout, **style_layout(title, height=plot_px + 60 + (30 if title else 0))})


def attention_heatmap(att: np.ndarray, tokens: Sequence[str], title: str | None = None) -> go.Figure:
    """A tokens x tokens attention (or rollout) matrix: row = query token, column = key token it attends to."""
    a = np.asarray(att, dtype=float)
    if a.shape != (len(tokens), len(tokens)):
        raise ExplainerError(f"Expected an attention matrix of shape ({len(tokens)}, {len(tokens)}), got {a.shape}.")
    tok = [html.escape(t) for t in tokens]
    custom = [[[tok[i], tok[j]] for j in range(len(tok))] for i in range(len(tok))]
    top = float(np.nanmax(a, initial=0.0))
    fig = go.Figure(
        go.Heatmap(
            z=a, zmin=0.0, zmax=top if top > 0 else 1.0, colorscale="Blues", xgap=1, ygap=1, customdata=custom,
            colorbar=dict(thickness=12, outlinewidth=0, title=dict(text="weight", side="right")),
            hovertemplate="<b>%{customdata[0]}</b> → <b>%{customdata[1]}</b><br>weight %{z:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(**_token_axis(tokens), title=dict(text="key (attended to)", font=dict(size=12)), side="top")
    fig.update_yaxes(**{**_token_axis(tokens), "tickangle": 0}, autorange="reversed", title=dict(text="query", font=dict(size=12)))
    apply_style(fig, title, height=max(380, 220 + 22 * len(tokens)))
    fig.update_layout(margin=dict(t=110 if title else 80))
    return fig
