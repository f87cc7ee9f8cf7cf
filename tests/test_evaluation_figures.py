"""figures.evaluation_extra: the static PNG twin of the curve figures."""

import io

import numpy as np
import pytest
from PIL import Image

from explainers.errors import ExplainerError
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
