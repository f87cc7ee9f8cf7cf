"""The house look shared by every figure: fonts, margins, template, fixed colours."""

from __future__ import annotations

import plotly.graph_objects as go

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


def apply_style(fig: go.Figure, title: str | None = None, height: int | None = None) -> go.Figure:
    """Give ``fig`` the house template, font, margins, optional title and height; returns ``fig``."""
    fig.update_layout(
        template=TEMPLATE,
        font=FONT,
        margin=MARGIN if title else {**MARGIN, "t": 20},
        hoverlabel=dict(font_size=12, bgcolor="white"),
    )
    if title:
        fig.update_layout(title=dict(text=title, x=0.0, xanchor="left", font=dict(size=TITLE_SIZE)))
    if height is not None:
        fig.update_layout(height=height)
    return fig
