"""Display-only options of the Text and BERT-layers pages in Chromium, on a 70-token mixed Chinese, English
and Japanese text (issue 18): tokens/words, one colour scale and the layers' scale redraw only their figure
(a fragment rerun, as the server's script-finished messages on the websocket say: the page's
models, prediction and inputs do not rerun). Each change is timed in the page, from the
pointer press to the first frame where the figure shows the new state, five times, and the times and their
medians are merged into test-artifacts/latency.json under "text:" keys with the load average (reported, not
asserted). Screenshots and the PNG downloads are kept for looking at."""

from __future__ import annotations

import os
import statistics
import time

import pytest
from PIL import Image
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tests.conftest import ARTIFACTS
from tests.test_browser_grid import merge_latency

pytestmark = pytest.mark.browser

MIXED = ("这家酒店的服务非常好，房间也很干净，早餐也不错。The staff were friendly and the breakfast was great, but the "
         "room was noisy at night and the wifi kept dropping. 可是晚上太吵了，我睡不着。私は不運な人間です。"
         "I would still go back next year.")
"""70 tokens for the multilingual model (with <s> and </s>)."""
SETTLED = ("() => !document.querySelector('[data-stale=\"true\"]')"
           " && !document.querySelector('[data-testid=\"stStatusWidget\"] button')")
HEATMAPS = "[class*='st-key-txt_heatmaps'] .js-plotly-plot"
LAYERS = "[class*='st-key-bl_layers_predicted'] .js-plotly-plot"
PRESSES = "() => document.addEventListener('mousedown', () => { window.__down = performance.now(); }, true)"
SIGNATURE = """(sel) => { const gd = document.querySelector(sel); if (!gd || !gd.data || !gd._fullLayout) return '';
  return JSON.stringify([gd.data.map(t => [t.text ? t.text.length : 0, t.marker ? t.marker.coloraxis : 0]),
    Object.keys(gd._fullLayout).filter(k => k.startsWith('coloraxis')).map(k => [gd._fullLayout[k].cmin, gd._fullLayout[k].cmax])]); }"""
CHANGED = """([sel, before]) => { const now = (""" + SIGNATURE + """)(sel);
  return now && now !== before ? performance.now() - window.__down : false; }"""


class ScriptRuns:
    """How each script run the server reports over the page's websocket ended: a whole-page run or a fragment's."""

    def __init__(self, page):
        self.ends: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self.frame))

    def frame(self, payload) -> None:
        if isinstance(payload, (bytes, bytearray)):
            msg = ForwardMsg.FromString(bytes(payload))
            if msg.WhichOneof("type") == "script_finished":
                self.ends.append(ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished))


    def wait_whole_run(self, page, start: int, timeout_s: float = 600) -> None:
        """Wait until a whole-page run that began after ``start`` messages has ended: the page drawing its figure
        and losing its stale marks is not enough, since the script may still be running (a race seen in CI)."""
        deadline = time.monotonic() + timeout_s
        while "FINISHED_SUCCESSFULLY" not in self.ends[start:]:
            assert time.monotonic() < deadline, f"no whole-page run ended in {timeout_s} s: {self.ends[start:]}"
            page.wait_for_timeout(100)
        page.wait_for_function(SETTLED, timeout=600_000)


def timed_clicks(page, plot: str, labels: list[str]) -> list[float]:
    """Click each label in turn; ms from its pointer press to the first frame where ``plot`` shows a new state."""
    times = []
    for text in labels:
        before = page.evaluate(SIGNATURE, plot)
        page.get_by_text(text, exact=True).click()
        times.append(page.wait_for_function(CHANGED, arg=[plot, before], polling="raf", timeout=120_000).json_value())
        page.wait_for_function(SETTLED)
    return times


def save_png(page, button: str, name: str) -> Image.Image:
    with page.expect_download() as download:
        page.get_by_role("button", name=button, exact=True).first.click()
    path = ARTIFACTS / name
    download.value.save_as(path)
    return Image.open(path)


def test_display_options_redraw_only_their_figure(page, app_url):
    page.set_viewport_size({"width": 1600, "height": 1100})
    runs = ScriptRuns(page)
    page.goto(app_url)
    page.get_by_role("link", name="Text", exact=True).click()
    page.locator(HEATMAPS).wait_for(timeout=600_000)
    page.wait_for_function(SETTLED, timeout=600_000)
    box = page.get_by_label("Text to explain")
    box.fill(MIXED)
    start = len(runs.ends)
    box.press("Control+Enter")
    page.wait_for_function("() => { const p = document.querySelector(\"" + HEATMAPS + "\");"
                           " return p && p.data && p.data.some(t => (t.text || []).includes('酒店')); }", timeout=600_000)
    runs.wait_whole_run(page, start)
    tokens = page.evaluate(f"() => document.querySelector(\"{HEATMAPS}\").data.filter(t => t.type === 'bar' && (t.yaxis || 'y') === 'y')"
                           ".reduce((n, t) => n + t.text.length, 0)")
    assert tokens >= 70, tokens
    page.evaluate(PRESSES)
    before = len(runs.ends)
    words = timed_clicks(page, HEATMAPS, ["Merge subwords into words"] * 5)
    scale = timed_clicks(page, HEATMAPS, ["One colour scale per method family"] * 5)
    assert runs.ends[before:] == ["FINISHED_FRAGMENT_RUN_SUCCESSFULLY"] * 10, runs.ends[before:]  # no whole-page run
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=str(ARTIFACTS / "text-70-tokens.png"))  # the controls above the heatmaps
    page.locator(HEATMAPS).screenshot(path=str(ARTIFACTS / "text-70-tokens-heatmaps.png"))
    png = save_png(page, "Heatmaps as PNG", "text-70-tokens-download.png")
    assert png.format == "PNG" and png.width > 400

    start = len(runs.ends)
    page.get_by_role("link", name="BERT layers").click()
    page.locator(LAYERS).wait_for(timeout=600_000)
    runs.wait_whole_run(page, start)
    page.evaluate(PRESSES)
    before = len(runs.ends)
    layers = timed_clicks(page, LAYERS, ["One scale for all", "Each row to its own peak"] * 2 + ["One scale for all"])
    assert runs.ends[before:] == ["FINISHED_FRAGMENT_RUN_SUCCESSFULLY"] * 5, runs.ends[before:]
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=str(ARTIFACTS / "bert-layers-70-tokens-page.png"))
    page.locator(LAYERS).screenshot(path=str(ARTIFACTS / "bert-layers-70-tokens-heatmap.png"))
    save_png(page, "As PNG", "bert-layers-70-tokens-download.png")

    times = {"tokens/words": words, "one colour scale": scale, "BERT layers scale": layers}
    merge_latency({
        "text: display change on a 70-token text (ms, pointer press to the frame showing the new figure)": {
            kind: [round(t, 1) for t in v] for kind, v in times.items()},
        "text: display change median (ms)": {kind: round(statistics.median(v), 1) for kind, v in times.items()},
        "text: load average": os.getloadavg(),
        "text: cpus": os.cpu_count(),
    })
