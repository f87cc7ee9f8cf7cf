"""Text pages in Chromium: type a sentence, hover a token's score, open the BERT layers page."""

import re

import pytest

from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

HEATMAPS = "[class*='st-key-txt_heatmaps'] .js-plotly-plot"


def test_sentence_heatmaps_hover_and_layers_page(page, app_url):
    page.goto(f"{app_url}/text")
    box = page.get_by_label("Text to explain")
    box.wait_for()
    box.fill("A dull, lifeless film with one wonderful performance.")
    box.press("Control+Enter")
    page.wait_for_function(
        "() => { const p = document.querySelector(\"" + HEATMAPS + "\");"
        " return p && p.data && p.data.some(t => (t.customdata || []).some(c => String(c).includes('lifeless'))); }"
    )
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")
    plot = page.locator(HEATMAPS)
    plot.scroll_into_view_if_needed()
    area = plot.locator(".nsewdrag").first.bounding_box()
    hover = page.locator(".hoverlayer .hovertext").first
    for fraction in (0.05, 0.12, 0.2, 0.3):  # move along the first line of tokens until one answers
        page.mouse.move(area["x"] + area["width"] * fraction, area["y"] + 12, steps=4)
        if hover.count():
            break
    hover.wait_for()
    assert re.search(r"score\s*-?\d", hover.text_content()), hover.text_content()
    page.screenshot(path=str(ARTIFACTS / "text-heatmaps.png"), full_page=True)

    page.get_by_role("link", name="BERT layers").click()
    page.locator("[class*='st-key-bl_layers_predicted'] .js-plotly-plot").wait_for()
    page.locator("[class*='st-key-bl_rollout'] .js-plotly-plot").wait_for()
    page.screenshot(path=str(ARTIFACTS / "bert-layers.png"), full_page=True)
