"""The Images page in Chromium: three methods, hover a value, opacity (the figure's slider) without a model pass, PNG download."""

import re

import pytest

from tests.conftest import ARTIFACTS
from tests.test_browser_shell import select_option

pytestmark = pytest.mark.browser

GRID = "[class*='st-key-img_grid'] .js-plotly-plot"
HEATMAPS = "() => { const p = document.querySelector(\"" + GRID + "\"); return p && p.data ? p.data.filter(t => t.type === 'heatmap').length : 0; }"


def runs(page) -> int:
    text = page.get_by_text(re.compile(r"Explainer runs in this session: \d+")).inner_text()
    return int(re.search(r"session: (\d+)", text).group(1))


def test_cat_three_methods_hover_opacity_download(page, app_url):
    page.goto(app_url)
    page.get_by_role("heading", name="Images").wait_for()
    select_option(page, "Sample photo", "cat")
    page.wait_for_function(f"({HEATMAPS})() === 4")
    # Drop Saliency to keep three methods.
    page.get_by_role("button", name="Remove Saliency").click()
    page.wait_for_function(f"({HEATMAPS})() === 3")
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")
    before = runs(page)

    plot = page.locator(GRID)
    plot.scroll_into_view_if_needed()
    box = plot.locator(".nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=8)
    hover = page.locator(".hoverlayer .hovertext").first
    hover.wait_for()
    assert re.search(r"value\s*-?\d", hover.text_content()), hover.text_content()

    rail = page.locator(f"{GRID} .slider-rail-rect").bounding_box()  # the grid's own opacity slider (in the figure)
    page.mouse.click(rail["x"] + rail["width"] * 0.9, rail["y"] + rail["height"] / 2)
    page.wait_for_function(
        "() => { const p = document.querySelector(\"" + GRID + "\");"
        " return p && p.data.filter(t => t.type === 'heatmap').every(t => t.opacity > 0.7); }"
    )
    assert runs(page) == before

    with page.expect_download() as download:
        page.get_by_role("button", name="Grid as PNG").click()
    path = ARTIFACTS / "images-grid.png"
    download.value.save_as(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.screenshot(path=str(ARTIFACTS / "images-three-methods.png"), full_page=True)
