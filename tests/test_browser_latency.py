"""Dashboard latency in Chromium (issue 9): photo change -> first Grad-CAM map drawn (display-only changes: test_browser_grid).

Reported (printed, and written to test-artifacts/latency.json with the load average), not
asserted as a hard limit: the bound below only catches a page that never answers. Each run
also records the Grad-CAM time the page itself measured (its caption), so the report splits the
model pass from the rest (prediction forward, Streamlit rerun, websocket, Plotly redraw).
"""

from __future__ import annotations

import os
import re
import statistics
import time

import pytest

from tests.test_browser_grid import merge_latency
from tests.test_browser_images import GRID

pytestmark = pytest.mark.browser

CHECKSUM = (
    "() => { const p = document.querySelector(\"" + GRID + "\");"
    " const h = p && p.data ? p.data.find(t => t.type === 'heatmap') : null;"
    " if (!h) return null; const z = JSON.stringify(h.z); let s = 0;"
    " for (let i = 0; i < z.length; i++) s = (s * 31 + z.charCodeAt(i)) | 0; return s; }"
)
SETTLED = "() => !document.querySelector('[data-stale=\"true\"]') && !document.querySelector('[data-testid=\"stStatusWidget\"] button')"
PHOTOS = ("coffee", "rocket", "flower", "palace", "motorcycle")
def wait_for_new_map(page, previous) -> float:
    page.wait_for_function(f"(prev) => {{ const s = ({CHECKSUM})(); return s !== null && s !== prev; }}", arg=previous,
                           timeout=120_000)
    return page.evaluate(CHECKSUM)


def grad_cam_ms(page) -> int:
    """The Grad-CAM time the page measured, from the caption under its map."""
    caption = page.get_by_text(re.compile(r"^Grad-CAM · target")).inner_text()
    return int(re.search(r"· (\d+) ms", caption).group(1))


def test_first_grad_cam_map_after_a_photo_change(page, app_url):
    page.goto(app_url)
    page.get_by_role("heading", name="Images").wait_for()
    page.get_by_label("Sample photo", exact=True).click()
    page.get_by_role("option", name="cat", exact=True).click()
    page.wait_for_function(f"({CHECKSUM})() !== null", timeout=120_000)
    for method in ("CAM", "Grad-CAM++", "Saliency"):
        page.get_by_role("button", name=f"Remove {method}").click()
        page.wait_for_function(SETTLED)
    page.wait_for_function(
        "() => { const p = document.querySelector(\"" + GRID + "\");"
        " return p && p.data.filter(t => t.type === 'heatmap').length === 1; }")
    checksum = page.evaluate(CHECKSUM)
    timings, computed = [], []
    for photo in PHOTOS:
        page.get_by_label("Sample photo", exact=True).click()
        option = page.get_by_role("option", name=photo, exact=True)
        option.wait_for()
        started = time.perf_counter()
        option.click()
        checksum = wait_for_new_map(page, checksum)
        timings.append(time.perf_counter() - started)
        page.wait_for_function(SETTLED)
        computed.append(grad_cam_ms(page))

    report = {
        "photo change -> first Grad-CAM map (s)": {photo: round(t, 3) for photo, t in zip(PHOTOS, timings)},
        "photo change -> first map, median (s)": round(statistics.median(timings), 3),
        "Grad-CAM pass as measured by the page (ms)": dict(zip(PHOTOS, computed)),
        "load average (first-map test)": os.getloadavg(),
        "cpus": os.cpu_count(),
        "what is timed": "from the click on the photo in the open select box to the new map's data in the Plotly "
                         "figure: Streamlit rerun, prediction forward (cached per photo), Grad-CAM pass, websocket, "
                         "Plotly redraw",
    }
    merge_latency(report)  # the display-change times come from tests/test_browser_grid.py
    assert statistics.median(timings) < 30
