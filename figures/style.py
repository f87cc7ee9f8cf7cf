"""The house look shared by every figure: fonts, margins, template, fixed colours."""

from __future__ import annotations

import copy
import functools

import plotly.graph_objects as go
import plotly.io as pio

FONT = dict(family="Inter, 'Segoe UI', 'Helvetica Neue', Arial, sans-serif", size=13, color="#1f2933")
TITLE_SIZE = 16
MARGIN = dict(l=10, r=10, t=50, b=10)
TEMPLATE = "plotly_white"
ACCENT = "#2563eb"
MUTED = "#9aa5b1"
SPECIAL_TOKEN_COLOUR = "#e4e7eb"
RANDOM_BASELINE_COLOUR = "#7b8794"
PLOT_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}
"""``st.plotly_chart(config=...)`` for figures with in-figure controls: the toolbar keeps zoom, pan, reset, PNG."""


def style_layout(title: str | None = None, height: int | None = None) -> dict:
    """The house template, font, margins, optional title and height as ``layout`` properties (for a
    figure built from one layout dict, validated once)."""
    out = dict(template=TEMPLATE, font=FONT, margin=MARGIN if title else {**MARGIN, "t": 20},
               hoverlabel=dict(font=dict(size=12), bgcolor="white"))
    if title:
        out["title"] = dict(text=title, x=0.0, xanchor="left", font=dict(size=TITLE_SIZE))
    if height is not None:
        out["height"] = height
    return out


def apply_style(fig: go.Figure, title: str | None = None, height: int | None = None) -> go.Figure:
    """Give ``fig`` the house look (:func:`style_layout`); returns ``fig``."""
    return fig.update_layout(**style_layout(title, height))


@functools.cache
def _template(name: str) -> dict:
    return pio.templates[name].to_plotly_json()


def unvalidated_figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from plain trace and layout dicts without plotly.py's property-by-property validation
    (``go.Figure(..., _validate=False)``), the template given by name inlined as its dict.

    Its JSON is the validated figure's (``go.Figure(data, layout)``): building a 6 x 70-token heatmap
    figure then takes about a fifth of the time, which a display change pays on every rerun. Each
    builder using it is checked against the validated figure in tests/test_figure_validation.py.
    """
    template = layout.get("template", TEMPLATE)
    if isinstance(template, str):
        layout = {**layout, "template": copy.deepcopy(_template(template))}
    return go.Figure(data, layout, _validate=False)
