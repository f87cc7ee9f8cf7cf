"""Static PNG twins of the token heatmaps and the layers x tokens heatmap (pure functions)."""

from __future__ import annotations

import csv
import io

import numpy as np
import plotly.colors as pcolors
import pytest
from PIL import Image

from explainers.errors import ExplainerError
from figures.export import (
    MARGIN_PX,
    TOKEN_CHAR_PX,
    TOKEN_LINE_PX,
    TOKEN_TITLE_PX,
    layers_tokens_png,
    records_csv,
    token_rows_png,
)
from figures.style import SPECIAL_TOKEN_COLOUR
from figures.text import MUTED_TEXT_COLOUR, TokenRow, row_scales, wrap_tokens


def image(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def pixel_in_box(tokens: list[str], index: int, width: int) -> tuple[int, int]:
    """(row, col) of a pixel inside token ``index``'s box of the first row, left of its text."""
    lines, starts, _ = wrap_tokens(tokens, width)
    x = MARGIN_PX + (starts[index] + 0.3) * TOKEN_CHAR_PX
    y = MARGIN_PX + TOKEN_TITLE_PX + lines[index] * TOKEN_LINE_PX + TOKEN_LINE_PX / 2
    return int(round(y)), int(round(x))


def hex_rgb(colour: str) -> np.ndarray:
    colour = colour.lstrip("#")
    return np.array([int(colour[i : i + 2], 16) for i in (0, 2, 4)])


def test_token_png_colours_the_top_token_with_the_scale_end_and_specials_grey() -> None:
    tokens = ["[CLS]", "a", "wonderful", "film", "[SEP]"]
    row = TokenRow("IG", tokens, np.array([0.0, 0.1, 1.0, 0.4, 0.0]), special=[True, False, False, False, True])
    png = image(token_rows_png([row], shared=True, signed=False, width=40))
    scale = row_scales([row.checked()], None, True, False)[0]
    last = pcolors.get_colorscale(scale.colorscale)[-1][1]  # Plotly's own end colour, independent of matplotlib
    end = np.array(pcolors.unlabel_rgb(pcolors.convert_colors_to_same_type(last, "rgb")[0][0]))
    assert np.abs(png[pixel_in_box(tokens, 2, 40)] - end).max() <= 3
    assert np.abs(png[pixel_in_box(tokens, 1, 40)] - end).max() > 40  # a low score is another colour
    assert np.abs(png[pixel_in_box(tokens, 0, 40)] - hex_rgb(SPECIAL_TOKEN_COLOUR)).max() <= 3


def test_token_png_grows_with_lines_and_rows() -> None:
    short = TokenRow("a", ["good"] * 4, np.arange(4.0))
    long = TokenRow("a", ["good"] * 60, np.arange(60.0))
    one, wrapped = image(token_rows_png([short], width=40)), image(token_rows_png([long], width=40))
    two = image(token_rows_png([short, short], width=40))
    assert wrapped.shape[0] > one.shape[0] and two.shape[0] > one.shape[0]
    assert one.shape[1] == wrapped.shape[1]  # the width follows the characters per line only


def test_token_png_per_row_scales_and_bad_rows() -> None:
    rows = [TokenRow("signed", ["x", "y"], np.array([-1.0, 2.0])), TokenRow("unsigned", ["x", "y"], np.array([0.0, 5.0]))]
    assert image(token_rows_png(rows, shared=False)).shape[0] > 0
    with pytest.raises(ExplainerError):
        token_rows_png([TokenRow("bad", ["x"], np.array([1.0, 2.0]))])
    with pytest.raises(ExplainerError):
        token_rows_png([])


def test_layers_png_first_layer_at_the_bottom() -> None:
    scores = np.zeros((3, 4))
    scores[0, 1] = 1.0  # layer 1 (the first) peaks at token 1
    png = image(layers_tokens_png(scores, ["a", "b", "c", "d"], ["L1", "L2", "L3"], normalise="global", signed=False))
    scale = row_scales([TokenRow("", ["x"], np.array([1.0]))], None, True, False)[0]
    last = pcolors.get_colorscale(scale.colorscale)[-1][1]
    end = np.array(pcolors.unlabel_rgb(pcolors.convert_colors_to_same_type(last, "rgb")[0][0]))
    height, width = png.shape[:2]
    peak = np.abs(png[:, : int(0.84 * width)] - end).max(axis=2) <= 3  # left of the colour bar
    ys, xs = np.nonzero(peak)
    assert ys.size > 100
    # the axes span 10%-70% of the height from the top; layer 1 of 3 is the bottom third
    assert ys.min() > 0.1 * height + 0.6 * height * 2 / 3 - 2
    assert xs.mean() < 0.16 * width + 0.68 * width / 2  # token "b" is in the left half
    with pytest.raises(ExplainerError, match="Expected scores of shape"):
        layers_tokens_png(np.zeros((2, 3)), ["a", "b"], ["x", "y"])


def test_token_png_writes_the_note_on_a_line_under_the_tokens() -> None:
    tokens = ["good"] * 4
    bare = image(token_rows_png([TokenRow("IG", tokens, np.arange(4.0))], width=40))
    noted = image(token_rows_png([TokenRow("IG", tokens, np.arange(4.0), note="Convergence delta +0.0012")], width=40))
    assert noted.shape[0] - bare.shape[0] == TOKEN_LINE_PX
    y = MARGIN_PX + TOKEN_TITLE_PX + TOKEN_LINE_PX  # the line after the single line of tokens
    band = noted[y + 4 : y + TOKEN_LINE_PX - 4, MARGIN_PX : MARGIN_PX + 40 * TOKEN_CHAR_PX]
    assert (np.abs(band - hex_rgb(MUTED_TEXT_COLOUR)).max(axis=2) < 60).sum() > 30  # grey text is drawn there


@pytest.mark.parametrize("typed", ["$\\q$", "$x^$", "a$b$c", "\\", "_"])
def test_pngs_draw_dollar_and_backslash_tokens_as_typed(typed: str) -> None:
    """Mathtext is off: an unbalanced '$...$' in a token or title must not raise."""
    assert image(token_rows_png([TokenRow(typed, [typed, "ok"], np.array([1.0, 2.0]), note=typed)])).size
    assert image(layers_tokens_png(np.ones((2, 2)), [typed, "ok"], [typed, "L2"], title=typed)).size


def test_records_csv_round_trips_awkward_tokens() -> None:
    records = [{"token": 'a,"b"', "score": 1.5, "special": False}, {"token": "line\nbreak", "score": -2.0, "special": True}]
    back = list(csv.DictReader(io.StringIO(records_csv(records))))
    assert [r["token"] for r in back] == ['a,"b"', "line\nbreak"]
    assert [float(r["score"]) for r in back] == [1.5, -2.0] and back[1]["special"] == "True"
    with pytest.raises(ExplainerError):
        records_csv([])
