"""figures.evaluation and its PNG twin: the same colours and AUC legends in HTML and PNG, an agreement
heatmap whose title clears its labels, readable log ticks on the IG convergence chart."""

import io

import matplotlib.axes
import matplotlib.colors
import numpy as np
import pytest
from PIL import Image

from explainers.errors import ExplainerError
from figures.evaluation import agreement_heatmap, curves_figure, log_steps_axis
from figures.evaluation_extra import lines_png


def test_lines_png_draws_every_curve_and_refuses_mismatched_lengths():
    x = np.linspace(0, 1, 5)
    png = lines_png(x, {"a": x, "b": 1 - x}, random=np.full(5, 0.5), title="t")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (700, 420)
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 20  # lines, text and legend, not a blank canvas
    with pytest.raises(ExplainerError, match="points"):
        lines_png(x, {"a": x[:3]})


def test_png_uses_the_html_colours_and_legend_names(monkeypatch):
    x = np.linspace(0, 1, 5)
    curves = {"Grad-CAM": 1 - x, "Saliency": (1 - x) ** 2}
    randoms = {"random, median (7x7)": 1 - x / 2, "random, median (pixels)": 1 - x / 3}
    auc = {"Grad-CAM": 0.5, "Saliency": 0.333, "random, median (7x7)": 0.75, "random, median (pixels)": 0.8}
    fig = curves_figure(x, curves, randoms, auc)
    drawn = []
    original = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot",
                        lambda self, *a, **k: drawn.append((k["label"], k["color"])) or original(self, *a, **k))
    lines_png(x, curves, randoms, auc=auc)
    html = [(t.name, t.line.color) for t in fig.data]
    assert [name for name, _ in drawn] == [name for name, _ in html]
    assert drawn[0][0] == "Grad-CAM (AUC 0.500)" and drawn[3][0] == "random, median (pixels) (AUC 0.800)"
    for (_, png_colour), (_, html_colour) in zip(drawn, html):
        assert matplotlib.colors.to_hex(png_colour) == matplotlib.colors.to_hex(html_colour)
    assert [t.line.dash for t in fig.data] == [None, None, "dash", "dot"]


def test_agreement_labels_sit_under_the_matrix_and_log_ticks_are_the_step_counts():
    names = ["Grad-CAM", "Integrated Gradients", "Saliency"]
    fig = agreement_heatmap(np.eye(3), names, title="Rank correlation")
    assert fig.layout.xaxis.side == "bottom" and list(fig.layout.xaxis.ticktext) == names
    assert fig.layout.title.text == "Rank correlation"
    steps = [8, 16, 32, 64, 128]
    chart = log_steps_axis(curves_figure(steps, {"gap": [0.1, 0.05, 0.02, 0.01, 0.005]}), steps)
    assert chart.layout.xaxis.type == "log" and list(chart.layout.xaxis.ticktext) == ["8", "16", "32", "64", "128"]
    assert list(chart.layout.xaxis.tickvals) == steps
