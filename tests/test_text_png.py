"""The token heatmap PNG: Chinese and Japanese tokens are drawn as glyphs, not boxes."""

from __future__ import annotations

import io
import itertools
import warnings

import numpy as np
import pytest
from PIL import Image

from figures.export import text_families, token_rows_png
from figures.text import TokenRow

JAPANESE, CHINESE = "私は不運な人間です。", "这家酒店太糟糕了"


def glyph_png(character: str) -> np.ndarray:
    png = token_rows_png([TokenRow("", [character], np.array([0.0]))], shared=True, signed=False, width=8)
    return np.asarray(Image.open(io.BytesIO(png)).convert("L")).astype(int)


@pytest.mark.skipif(len(text_families()) < 2, reason="no CJK font installed (scripts/test.sh installs fonts-wqy-microhei)")
def test_chinese_and_japanese_tokens_are_drawn_as_glyphs():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)" for each box it draws
        token_rows_png([TokenRow("zh", list(CHINESE), np.linspace(0, 1, len(CHINESE))),
                        TokenRow("ja", list(JAPANESE), np.linspace(0, 1, len(JAPANESE)))], width=40)
        # A missing glyph is one and the same box whatever the character; real glyphs differ.
        images = [glyph_png(c) for c in ("私", "运", "糟", "は")]
    for a, b in itertools.combinations(images, 2):
        assert np.abs(a - b).sum() > 0
