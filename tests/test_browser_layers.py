"""The BERT layers page in Chromium with a 70-token text (issue 18): the layers x tokens heatmap wraps, so every
token column keeps a readable width; the layout is checked from the page and a screenshot kept."""

import pytest

from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

LONG = ("The actors are wonderful, but the script is lazy and the ending is a letdown. I wanted to like this film more "
        "than I did, because the first hour has real charm, sharp jokes and a warm heart; then it falls apart into a "
        "dull chase with no stakes at all and a score that never stops.")
SETTLED = ("() => !document.querySelector('[data-stale=\"true\"]')"
           " && !document.querySelector('[data-testid=\"stStatusWidget\"] button')")
PLOT = "[class*='st-key-bl_layers_predicted'] .js-plotly-plot"
COLUMNS = """(sel) => {
  const gd = document.querySelector(sel);
  const heat = gd.data.filter(t => t.type === 'heatmap');
  const ticks = [...gd.querySelectorAll('.xaxislayer-above text')].map(t => { const r = t.getBoundingClientRect(); return [r.left, r.right]; });
  const drag = [...gd.querySelectorAll('.nsewdrag')].map(e => e.getBoundingClientRect().width);
  return {tokens: heat.reduce((n, t) => n + t.x.length, 0), blocks: heat.length, ticks: ticks.length,
          column_px: Math.min(...drag.map((w, k) => w / gd._fullLayout['xaxis' + (k ? k + 1 : '')].range.reduce((a, b) => b - a)))};
}"""


def test_seventy_token_layers_heatmap_wraps_and_stays_legible(page, app_url):
    page.set_viewport_size({"width": 1600, "height": 1400})
    page.goto(app_url)  # then a click on the navigation, possibly while the first page still loads (dashboard.py)
    page.get_by_role("link", name="BERT layers").click()
    page.locator(PLOT).wait_for(timeout=600_000)  # the default text's heatmap: the model is loaded
    page.wait_for_function(SETTLED, timeout=600_000)  # the page is inert while its script runs
    box = page.get_by_label("Text to explain")
    box.fill(LONG)
    box.press("Control+Enter")
    page.wait_for_function(f"() => {{ const p = document.querySelector(\"{PLOT}\");"
                           " return p && p.data && p.data.filter(t => t.type === 'heatmap').length > 1; }")
    page.wait_for_function(SETTLED, timeout=600_000)
    found = page.evaluate(COLUMNS, PLOT)
    assert found["tokens"] >= 70 and found["blocks"] >= 2, found
    assert found["column_px"] >= 20, found  # a token column stays at least 20 px wide
    assert found["ticks"] >= found["tokens"], found  # every token keeps its tick label
    assert page.locator("[data-testid='stException']").count() == 0
    plot = page.locator(PLOT)
    plot.scroll_into_view_if_needed()
    plot.screenshot(path=str(ARTIFACTS / "bert-layers-70-tokens.png"))
