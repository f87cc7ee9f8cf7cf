"""Figures built without plotly.py's validation (figures.style.unvalidated_figure) are valid and the same as
validated ones, and token bars coloured in Python show the colours Plotly's colour axis would give them."""

from __future__ import annotations

import json

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from figures import text
from figures.scales import Scale

RNG = np.random.default_rng(3)


def rows(n: int = 3, tokens: int = 20) -> list[text.TokenRow]:
    toks = ["[CLS]", *(f"t{i}" for i in range(tokens - 2)), "[SEP]"]
    special = [i in (0, tokens - 1) for i in range(tokens)]
    return [text.TokenRow(f"method {k}", toks, RNG.standard_normal(tokens) if k % 2 else RNG.random(tokens),
                          words=toks, special=special, note="delta +0.01" if k == 0 else "") for k in range(n)]


def as_json(fig: go.Figure) -> dict:
    return json.loads(pio.to_json(fig, validate=False))


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("title", [None, "A title"])
def test_token_heatmap_figure_equals_the_validated_one(shared, title):
    fig = text.token_heatmap_rows(rows(), shared=shared, signed=[False, True, False], width=40, title=title)
    validated = go.Figure(fig.to_dict())  # raises on any invalid property
    assert as_json(validated) == as_json(fig)
    assert as_json(fig)["layout"]["template"]["layout"]["paper_bgcolor"] == "white"  # the house template, inlined


def hand_colour(value: float, scale: Scale) -> tuple[float, float, float]:
    """Linear RGB interpolation between the named colour scale's stops, by hand."""
    stops = pcolors.get_colorscale(scale.colorscale)
    pos = np.array([p for p, _ in stops])
    rgb = np.array([pcolors.hex_to_rgb(c) if c.startswith("#") else pcolors.unlabel_rgb(c) for _, c in stops], float)
    t = np.clip((value - scale.zmin) / (scale.zmax - scale.zmin), 0, 1)
    return tuple(np.interp(t, pos, rgb[:, k]) for k in range(3))


def test_token_bars_show_the_colour_axis_colours_and_one_hidden_carrier_draws_each_bar():
    scores = np.array([0.0, 0.5, 1.0, 0.37, 2.0])  # 2.0 lies beyond the scale: clamped to its end
    for scale in (Scale(0.0, 1.0, "Inferno", False, ""), Scale(-1.0, 1.0, "RdBu_r", True, "")):
        fig = text.token_heatmap(["a", "b", "c", "d", "e"], scores, scale=scale)
        bars = [t for t in fig.data if t.type == "bar"]
        drawn = [tuple(float(v) for v in c[4:-1].split(",")) for c in bars[0].marker.color]
        for got, value in zip(drawn, scores):
            np.testing.assert_allclose(got, hand_colour(value, scale), atol=0.51)  # rounded to whole units
        carrier, = [t for t in fig.data if t.type == "scatter"]
        assert carrier.marker.coloraxis == "coloraxis" and carrier.marker.opacity == 0 and carrier.hoverinfo == "skip"
        assert tuple(carrier.marker.color) == (scale.zmin, scale.zmax)
        assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (scale.zmin, scale.zmax)


@pytest.mark.parametrize("tokens, normalise, title", [(20, "row", None), (73, "global", "A title")])
def test_layers_tokens_figure_equals_the_validated_one(tokens, normalise, title):
    fig = text.layers_tokens_heatmap(RNG.standard_normal((13, tokens)), [f"t{i}" for i in range(tokens)],
                                     normalise=normalise, title=title)
    assert len(fig.data) == (1 if tokens <= text.TOKENS_PER_LINE else 3)
    assert as_json(go.Figure(fig.to_dict())) == as_json(fig)
