"""Dashboard latency in Chromium (issue 9): photo change -> first Grad-CAM map drawn, and a display-only change.

Reported (printed, and written to test-artifacts/latency.json with the load average), not
asserted as a hard limit: the bound below only catches a page that never answers.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import pytest

from tests.conftest import ARTIFACTS
from tests.test_browser_images import GRID
from tests.test_browser_shell import select_option

pytestmark = pytest.mark.browser

CHECKSUM = (
    "() => { const p = document.querySelector(\"" + GRID + "\");"
    " const h = p && p.data ? p.data.find(t => t.type === 'heatmap') : null;"
    " if (!h) return null; const z = JSON.stringify(h.z); let s = 0;"
    " for (let i = 0; i < z.length; i++) s = (s * 31 + z.charCodeAt(i)) | 0; return s; }"
)
SETTLED = "() => !document.querySelector('[data-stale=\"true\"]') && !document.querySelector('[data-testid=\"stStatusWidget\"] button')"


def wait_for_new_map(page, previous) -> float:
    page.wait_for_function(f"(prev) => {{ const s = ({CHECKSUM})(); return s !== null && s !== prev; }}", arg=previous,
                           timeout=120_000)
    return page.evaluate(CHECKSUM)


def test_first_grad_cam_map_after_a_photo_change(page, app_url):
    page.goto(app_url)
    page.get_by_role("heading", name="Images").wait_for()
    select_option(page, "Sample photo", "cat")
    page.wait_for_function(f"({CHECKSUM})() !== null", timeout=120_000)
    for method in ("CAM", "Grad-CAM++", "Saliency"):
        page.get_by_role("button", name=f"Remove {method}").click()
        page.wait_for_function(SETTLED)
    page.wait_for_function(
        "() => { const p = document.querySelector(\"" + GRID + "\");"
        " return p && p.data.filter(t => t.type === 'heatmap').length === 1; }")
    checksum = page.evaluate(CHECKSUM)
    timings = []
    for photo in ("coffee", "rocket", "flower", "palace", "motorcycle"):
        started = time.perf_counter()
        select_option(page, "Sample photo", photo)
        checksum = wait_for_new_map(page, checksum)
        timings.append(time.perf_counter() - started)
        page.wait_for_function(SETTLED)

    slider = page.get_by_role("slider", name="Map opacity")
    slider.focus()
    started = time.perf_counter()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => { const p = document.querySelector(\"" + GRID + "\");"
        " return p && p.data.filter(t => t.type === 'heatmap').every(t => t.opacity > 0.5); }")
    display = time.perf_counter() - started

    report = {
        "photo change -> first Grad-CAM map (s)": [round(t, 3) for t in timings],
        "median (s)": round(statistics.median(timings), 3),
        "opacity change -> redrawn (s)": round(display, 3),
        "load average": os.getloadavg(),
        "what is timed": "from the photo selection (incl. opening the select box) to the new map's data in the "
                         "Plotly figure: prediction forward, Grad-CAM pass, Streamlit rerun, websocket, Plotly redraw",
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "latency.json").write_text(json.dumps(report, indent=1))
    print("\n" + json.dumps(report, indent=1))
    assert statistics.median(timings) < 30
