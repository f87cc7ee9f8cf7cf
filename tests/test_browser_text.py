"""Text pages in Chromium: type a sentence, hover a token's score, open the BERT layers page."""

import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

SENTENCE = "A dull, lifeless film with one wonderful performance."
HEATMAPS = "[class*='st-key-txt_heatmaps'] .js-plotly-plot"
HOVER = re.compile(r"^\s*(?P<token>.+?)\s+\(word: (?P<word>.+?)\)\s*score\s*(?P<score>-?[\d.]+(?:e[-+]?\d+)?)")


def test_sentence_heatmaps_hover_and_layers_page(page, app_url):
    page.goto(f"{app_url}/text")
    box = page.get_by_label("Text to explain")
    box.wait_for()
    box.fill(SENTENCE)
    box.press("Control+Enter")
    page.wait_for_function(
        "() => { const p = document.querySelector(\"" + HEATMAPS + "\");"
        " return p && p.data && p.data.some(t => (t.customdata || []).some(c => String(c).includes('lifeless'))); }"
    )
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")
    # the predicted class is in the target's label, and it follows the new text (negative)
    expect(page.locator("[class*='st-key-txt_target'] label")).to_contain_text("predicted: negative")
    plot = page.locator(HEATMAPS)
    plot.scroll_into_view_if_needed()
    area = plot.locator(".nsewdrag").first.bounding_box()
    hover = page.locator(".hoverlayer .hovertext").first
    found = None
    for step in range(1, 40):  # move along IG's first line of tokens until a (non-special) token answers
        page.mouse.move(area["x"] + area["width"] * step / 40, area["y"] + 12, steps=2)
        if hover.count():
            found = HOVER.search(hover.locator("text.nums").text_content().replace("\u2212", "-"))
            if found and found["word"] != "(special)":
                break
    assert found and found["word"] != "(special)", hover.text_content() if hover.count() else "no hover"
    token, score = found["token"], float(found["score"])
    drawn = page.evaluate(
        "([sel, token]) => document.querySelector(sel).data.filter(t => t.type === 'bar' && (t.yaxis || 'y') === 'y')"
        ".flatMap(t => t.customdata).filter(c => c[0] === token).map(c => c[2])", [HEATMAPS, token])
    assert token.removeprefix("##").lstrip("▁").lower() in SENTENCE.lower() and drawn, (token, drawn)
    assert any(abs(score - d) <= 1e-3 * abs(d) + 1e-12 for d in drawn), (score, drawn)  # hover shows 4 digits
    page.screenshot(path=str(ARTIFACTS / "text-heatmaps.png"), full_page=True)
    save_png(page, "Heatmaps as PNG", "text-heatmaps-download.png")

    page.get_by_role("link", name="BERT layers").click()
    page.locator("[class*='st-key-bl_layers_predicted'] .js-plotly-plot").wait_for()
    page.locator("[class*='st-key-bl_rollout'] .js-plotly-plot").wait_for()
    expect(page.get_by_label("Text to explain")).to_have_value(SENTENCE)  # the layers page starts from it
    page.screenshot(path=str(ARTIFACTS / "bert-layers.png"), full_page=True)
    save_png(page, "As PNG", "bert-layers-download.png")


def save_png(page, button: str, name: str) -> None:
    """Click the (first) download button called ``button``; the file must be a PNG that opens."""
    with page.expect_download() as download:
        page.get_by_role("button", name=button, exact=True).first.click()
    path = ARTIFACTS / name
    download.value.save_as(path)
    with Image.open(path) as png:
        assert png.format == "PNG" and png.width > 200 and png.height > 100
