"""The self-contained report: plotly.js once, every figure, facts, captions, versions, escaping."""

import re

import numpy as np
import plotly.offline

from figures.image import topk_bar
from figures.scales import scale_for
from reports import MapFacts, Section, build_report, image_section, light_markdown, text_section, versions

LABELS = ["<b>cat</b>", "dog", "car"]


def _image_section() -> Section:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)
    maps = [[rng.random((32, 40)), rng.standard_normal((32, 40))], [rng.random((32, 40)), None]]
    facts = [[MapFacts("Grad-CAM", "cat", "layer4", 0.012), MapFacts("IG", "cat", None, 1.5, delta_ratio=0.03)],
             [MapFacts("Grad-CAM", "dog", "layer4", 0.011, scores={"deletion AUC": 0.25}),
              MapFacts("IG", "dog", error="too slow")]]
    return image_section("photo <1>.png", rgb, LABELS, np.array([0.7, 0.2, 0.1]), maps, ["cat", "dog"],
                         ["Grad-CAM", "IG"], facts, inputs={"Image": "photo <1>.png", "Layer": "layer4"},
                         captions=["**Grad-CAM** is *coarse*; see `layer4`."])


def test_plotly_inlined_once_and_every_figure_placed():
    text = text_section("t", "so <good>", ["neg", "pos"], np.array([0.1, 0.9]),
                        [("Tokens", topk_bar(["a", "b"], [0.5, 0.5]))], [MapFacts("Saliency", "pos", seconds=0.2)])
    page = build_report("Report & co", [_image_section(), text], versions={"torch": "9.9"})
    js = plotly.offline.get_plotlyjs()
    assert page.count(js) == 1
    assert page.count("<script") == 1 + 2 + 2  # plotly.js, then one newPlot script per figure
    assert len(re.findall(r'<div id="figure-\d-\d"', page)) == 4
    assert "https://cdn" not in page.replace(js, "")  # no figure asks for a CDN copy
    assert page.index(js) < page.index('id="figure-0-0"')


def test_facts_scales_captions_versions_and_escaping():
    page = build_report("R", [_image_section()], versions={"torch": "9.9", "git commit": "abc123"})
    assert "&lt;b&gt;cat&lt;/b&gt;" in page and "<b>cat</b>" not in page  # a hostile class name stays text
    assert "photo &lt;1&gt;.png" in page
    assert "12 ms" in page and "1500 ms" in page
    assert "IG delta 3.00% of the score difference" in page and 'class="warn"' in page
    assert "deletion AUC 0.25" in page
    assert "not computed: too slow" in page
    assert "<b>Grad-CAM</b> is <i>coarse</i>; see <code>layer4</code>." in page
    assert "<code>9.9</code>" in page and "abc123" in page
    assert page.count("attribution<br>own scale") == 3  # every computed map states its colour scale


def test_scale_text_comes_from_the_grid_scales():
    rng = np.random.default_rng(1)
    maps = [[rng.random((8, 8)) * 5]]
    shared = scale_for([maps[0][0]], "shared")[0]
    section = image_section("x", np.zeros((8, 8, 3), np.uint8), ["a", "b", "c"], np.array([0.5, 0.3, 0.2]), maps,
                            ["a"], ["m"], [[MapFacts("m", "a")]], scales=shared)
    assert section.facts[0].scale.startswith(shared.label)
    assert f"{shared.zmax:.4g}" in section.facts[0].scale


def test_light_markdown_escapes_before_formatting():
    assert light_markdown("<script>**x**") == "&lt;script&gt;<b>x</b>"


def test_versions_names_the_stack():
    found = versions()
    for name in ("python", "torch", "torchvision", "transformers", "plotly", "streamlit", "git commit"):
        assert found[name]
