"""Four browser sessions at once on the running app: each gets its own, correct map."""

import time

import numpy as np
import pytest

import explainers
import models
from figures.grid import display_map
from tests.apptest_util import plotly_array
from tests.conftest import ARTIFACTS
from tests.test_browser_shell import select_option

pytestmark = pytest.mark.browser

SESSIONS = ["cat", "coffee", "rocket", "flower"]
GRID = "[class*='st-key-img_grid'] .js-plotly-plot"
READ_MAP = (
    "() => { const p = document.querySelector(\"" + GRID + "\");"
    " if (!p || !p.data) return null;"
    " const h = p.data.filter(t => t.type === 'heatmap');"
    " if (h.length !== 1) return null;"
    " const z = h[0].z;"
    " return z.bdata ? {bdata: z.bdata, dtype: z.dtype, shape: String(z.shape)} : z; }"
)


def reference_map(sample: str) -> np.ndarray:
    model = models.load_image_model()
    x = model.to_tensor(model.resize(models.load_sample(sample)))
    found = explainers.explain(model.net, x, "grad_cam", layer=model.default_layer)
    return display_map(found.maps[0].numpy(), found.raw[0].numpy())  # as the grid draws it (a layer map: 112 px)


def assert_shows(page, expected: np.ndarray, timeout_s: float = 240) -> None:
    """Wait until the page's single map equals ``expected`` (it may still show an earlier one)."""
    deadline = time.monotonic() + timeout_s
    tolerance = 1e-4 * float(np.abs(expected).max()) + 1e-6
    error = None
    while time.monotonic() < deadline:
        shown = page.evaluate(READ_MAP)
        if shown is not None:
            error = float(np.abs(plotly_array(shown).astype(np.float32) - expected).max())
            if error <= tolerance:
                return
        page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "concurrent-failure.png"), full_page=True)
    others = {name: float(np.abs(plotly_array(shown).astype(np.float32) - reference_map(name)).max()) for name in SESSIONS} if shown else None
    raise AssertionError(f"the page never showed its own map (last max abs error {error}; vs each sample {others})")


def test_four_sessions_get_their_own_maps(browser, app_url):
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in SESSIONS]
    pages = [c.new_page() for c in contexts]
    try:
        for page in pages:
            page.set_default_timeout(180_000)
            page.goto(app_url)
        for page in pages:
            page.get_by_role("heading", name="Images").wait_for()
            page.get_by_role("button", name="Remove Saliency").click()
            page.get_by_role("button", name="Remove CAM", exact=True).click()
            page.get_by_role("button", name="Remove Grad-CAM++").click()
        for page, sample in zip(pages, SESSIONS):  # all four now compute at the same time
            select_option(page, "Sample photo", sample)
        for page, sample in zip(pages, SESSIONS):
            expected = reference_map(sample)
            assert_shows(page, expected)
            page.screenshot(path=str(ARTIFACTS / f"concurrent-{sample}.png"))
    finally:
        for context in contexts:
            context.close()
