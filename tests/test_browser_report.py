"""The exported report in Chromium with every network request blocked: all figures render from the inlined plotly.js."""

import numpy as np
import pytest

from figures.text import TokenRow, token_heatmap_rows
from reports import MapFacts, build_report, image_section, text_section
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def report_file(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    maps = [[rng.random((48, 64)), rng.standard_normal((48, 64))], [rng.random((6, 8)), None]]
    facts = [[MapFacts("Grad-CAM", "cat", "layer4", 0.01), MapFacts("IG", "cat", delta_ratio=0.004)],
             [MapFacts("CAM", "dog", "layer4", 0.01), MapFacts("IG", "dog", error="not computed")]]
    photo = image_section("photo.png", rgb, ["cat", "dog", "car"], np.array([0.6, 0.3, 0.1]), maps, ["cat", "dog"],
                          ["Grad-CAM", "IG"], facts, inputs={"Model": "test"}, captions=["**Grad-CAM**: coarse."])
    rows = [TokenRow("Saliency", ["a", "warm", "film"], np.array([0.1, 0.9, 0.3]))]
    text = text_section("a warm film", "a warm film", ["negative", "positive"], np.array([0.2, 0.8]),
                        [("Tokens", token_heatmap_rows(rows))], [MapFacts("Saliency", "positive", seconds=0.1)])
    path = tmp_path / "report.html"
    path.write_text(build_report("Offline report", [photo, text]), encoding="utf-8")
    return path, 4  # figures: top-5 bar + map grid, prediction bar + token rows


def test_report_renders_every_figure_offline(browser, tmp_path):
    path, figures = report_file(tmp_path)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    requested = []

    def refuse(route):
        requested.append(route.request.url)
        route.abort() if not route.request.url.startswith("file:") else route.continue_()

    context.route("**/*", refuse)
    context.set_offline(True)
    page = context.new_page()
    page.on("request", lambda request: requested.append(request.url))
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(path.as_uri())
        page.wait_for_function(
            f"() => window.Plotly && document.querySelectorAll('.js-plotly-plot .main-svg').length >= {figures}",
            timeout=60_000)
        drawn = page.evaluate("""() => [...document.querySelectorAll('div[id^="figure-"]')].map(d => ({
            id: d.id, plotted: d.classList.contains('js-plotly-plot'), traces: (d.data || []).length,
            heatmaps: (d.data || []).filter(t => t.type === 'heatmap').length,
            drawnHeatmaps: d.querySelectorAll('.hm').length }))""")
        page.screenshot(path=str(ARTIFACTS / "report-offline.png"), full_page=True)
    finally:
        context.close()
    assert len(drawn) == figures
    assert all(d["plotted"] and d["traces"] > 0 for d in drawn), drawn
    grid = drawn[1]
    assert grid["heatmaps"] == grid["drawnHeatmaps"] == 3  # the three computed maps, each drawn
    assert not errors, errors
    assert all(url.startswith("file:") for url in requested), requested
