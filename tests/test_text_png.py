"""The token heatmap PNG: it names what it explains, its texts (colour-bar labels and ticks included)
never overlap or leave the image, and Chinese and Japanese tokens are drawn as glyphs, not boxes."""

from __future__ import annotations

import io
import itertools
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.text import Text
from PIL import Image

from figures.export import text_families, token_rows_figure, token_rows_png
from figures.text import TokenRow

JAPANESE, CHINESE = "私は不運な人間です。", "这家酒店太糟糕了"
TITLE = "multilingual-sentiment: which tokens push toward “negative” (the predicted class, 97.1%)"


def rows(tokens: list[str], seed: int = 0) -> list[TokenRow]:
    """Four methods' rows as the Text page draws them: signed and unsigned, tiny and large values, a note."""
    rng = np.random.default_rng(seed)
    n = len(tokens)
    return [TokenRow("Integrated Gradients", tokens, rng.normal(size=n) * 2e-4, note="Convergence delta +0.0012"),
            TokenRow("Saliency", tokens, rng.random(n)),
            TokenRow("Input x gradient", tokens, rng.normal(size=n) * 1.5e-4),
            TokenRow("Attention rollout", tokens, rng.random(n) * 3000)]


def drawn_texts(fig: plt.Figure) -> list[tuple[str, np.ndarray]]:
    """(text, [x0, y0, x1, y1] in pixels) of every non-empty text the figure draws (recorded as each is
    drawn: an axis keeps unused tick labels that are never drawn)."""
    found = []
    draw = Text.draw

    def recording(self, renderer):
        draw(self, renderer)
        if self.get_visible() and self.get_text().strip():
            box = self.get_window_extent(renderer)
            found.append((self.get_text(), np.array([box.x0, box.y0, box.x1, box.y1])))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Text, "draw", recording)
        fig.canvas.draw()
    return found


def overlap(a: np.ndarray, b: np.ndarray, slack: float = 0.5) -> bool:
    return a[0] + slack < b[2] and b[0] + slack < a[2] and a[1] + slack < b[3] and b[1] + slack < a[3]


@pytest.mark.parametrize("shared, width, tokens", [
    (False, 90, [*JAPANESE, "这家", "酒店", "太糟糕了", "film", "great"]),
    (False, 40, ["[CLS]", "a", "film", "[SEP]"]),  # one-line rows: the shortest colour bars
    (True, 40, ["good"]),
    (False, 90, [f"w{i}" for i in range(70)]),  # a 70-token text
])
def test_png_texts_never_overlap_and_stay_inside(shared, width, tokens):
    fig = token_rows_figure(rows(tokens), shared=shared, width=width, title=TITLE)
    try:
        texts = drawn_texts(fig)
        w, h = fig.canvas.get_width_height()
    finally:
        plt.close(fig)
    assert any(t.startswith("multilingual-sentiment") for t, _ in texts)
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        assert not overlap(box_a, box_b), (a, b, box_a, box_b)
    for t, box in texts:
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= w and box[3] <= h, (t, box, (w, h))


def test_png_title_names_the_class_above_the_rows():
    bare = np.asarray(Image.open(io.BytesIO(token_rows_png(rows(["good"]), width=40))))
    titled = np.asarray(Image.open(io.BytesIO(token_rows_png(rows(["good"]), width=40, title=TITLE))))
    assert titled.shape[0] > bare.shape[0] and titled.shape[1] == bare.shape[1]  # a header band, same width


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
