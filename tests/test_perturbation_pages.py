"""The perturbation methods and controls on the pages, with no page-specific code: the Images page's grid
(AppTest), the Gallery's batched maps and the HTML report built from them, the Text page's rows."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

import explainers
import models
from reports import build_report
from tests.apptest_util import no_exceptions, page_app, plotly_specs
from ui.gallery_results import Item, gallery_maps
from ui.methods import PAGE_DEFAULTS, page_options
from ui.report_button import image_report_section
from ui.resources import Shared

pytestmark = pytest.mark.slow

NEW = [m.name for m in explainers.methods("image") if m.family in ("perturbation", "control")]


def test_new_methods_are_listed_for_images_and_text() -> None:
    assert set(NEW) == {"occlusion", "rise", "lime", "random", "sobel"}
    assert {"occlusion", "lime"} <= set(explainers.names("text"))


def test_images_page_draws_every_new_method_in_the_grid() -> None:
    at = page_app("images", timeout=900)
    at.run()
    assert no_exceptions(at)
    at.multiselect(key="img_methods").set_value(["grad_cam", *NEW]).run()
    assert no_exceptions(at)
    grids = {k: v for k, v in plotly_specs(at).items() if k.startswith("img_grid")}
    spec = grids.get("img_grid") or grids.get("img_grid_all") or next(iter(grids.values()))  # the finished grid
    heatmaps = [t for t in spec["data"] if t["type"] == "heatmap"]
    assert len(heatmaps) == 1 + len(NEW)
    titles = {re.sub("<[^>]+>", "", a["text"]) for a in spec["layout"]["annotations"]}
    labels = [explainers.method(m).label for m in NEW]
    assert set(labels) <= titles, titles
    facts = [c.value for c in at.caption if "target" in c.value]
    for label in labels:
        line = next(f for f in facts if f.startswith(f"**{label}**"))
        assert ":red[" not in line and "ms" in line, line
    meanings = " ".join(m.value for m in at.markdown)
    assert all(explainers.method(m).caption in meanings for m in NEW)
    seconds, forwards = at.session_state["image_map_seconds"]["occlusion"]  # what the next estimate scales from
    assert seconds > 0 and forwards == explainers.method("occlusion").forwards((1, 3, 224, 224), {"window": 16, "stride": 8})


def test_the_time_left_scales_each_methods_last_seconds_per_forward(monkeypatch) -> None:
    """Before a method ran: its forwards x one forward's time; after: x its own measured seconds per forward
    (occlusion's incremental windows cost far less than one whole forward), for other options too; a method
    that does not count forwards: its last seconds per map; unknown: no estimate."""
    import ui.image_results as results

    store: dict = {}
    monkeypatch.setattr(results, "_seconds_store", lambda: store)
    x = np.zeros((1, 3, 224, 224))
    fine, coarse = {"window": 16, "stride": 8}, {"window": 32, "stride": 16}
    occlusion = explainers.method("occlusion")
    assert results.estimate_seconds([("occlusion", 0)], x, {"occlusion": fine}, 0.05) == pytest.approx(729 * 0.05)
    store["occlusion"] = (5.4, occlusion.forwards(x.shape, fine))
    assert results.estimate_seconds([("occlusion", 0), ("occlusion", 1)], x, {"occlusion": fine}, 0.05) == \
        pytest.approx(2 * 5.4)
    assert results.estimate_seconds([("occlusion", 0)], x, {"occlusion": coarse}, 0.05) == \
        pytest.approx(5.4 * occlusion.forwards(x.shape, coarse) / 729)
    assert results.estimate_seconds([("grad_cam", 0)], x, {}, 0.05) is None
    store["grad_cam"] = (0.2, None)
    assert results.estimate_seconds([("grad_cam", 0), ("occlusion", 0)], x, {"occlusion": fine}, 0.05) == \
        pytest.approx(0.2 + 5.4)

    # a pass under way: its own pace (2 s for 100 of 729 passes) for the rest of it and its other targets
    pending = [("occlusion", 0), ("occlusion", 1), ("grad_cam", 1)]
    pace = 2.0 * 729 / 100
    assert results.seconds_left(pending, x, {"occlusion": fine}, 0.05, (("occlusion",), 0, 2.0, 100, 729)) == \
        pytest.approx(pace - 2.0 + pace + 0.2)
    assert results.seconds_left(pending, x, {"occlusion": fine}, 0.05) == pytest.approx(2 * 5.4 + 0.2)
    group = [("smoothgrad", 0), ("vargrad", 0), ("smoothgrad", 2), ("vargrad", 2)]  # one noisy pass per target
    assert results.seconds_left(group, x, {}, 0.05, (("smoothgrad", "vargrad"), 0, 1.0, 5, 25)) == pytest.approx(4 + 5)


@pytest.fixture(scope="module")
def shared():
    return Shared(models.load_image_model(), threading.Lock())


def test_gallery_maps_and_the_report_carry_the_new_methods(shared) -> None:
    model = shared.model
    rgb = model.resize(models.load_sample("cat"))
    item = Item("cat", (model.name, "test", "cat"), rgb, model.to_tensor(rgb))
    target = int(model.net(item.x).argmax())
    options = page_options(PAGE_DEFAULTS)  # what the Gallery passes; a coarser occlusion (49 windows, not 729) for time
    options["occlusion"] = {**options["occlusion"], "window": 32, "stride": 32}
    seen = []
    found = gallery_maps(shared, [item], [target], NEW, model.default_layer, options, {},
                         progress=lambda done, total: seen.append((done, total)))[0]
    for name in NEW:
        result = found[name]
        assert result.error is None and result.heat.shape == rgb.shape[:2] and np.isfinite(result.heat).all(), name
        assert result.heat.std() > 0, f"{name}: not a blank map"
    assert found["lime"].extras["r2"] <= 1 and found["rise"].extras["seed"] == PAGE_DEFAULTS["seed"]
    probs = model.net(item.x).softmax(-1)[0].detach().numpy()
    section = image_report_section(model, rgb, "cat", probs, {(v, target): found[v] for v in NEW}, NEW, [target],
                                   model.default_layer)
    page = build_report("Perturbation methods", [section])
    for name in NEW:
        assert explainers.method(name).label in page
    assert "not in the results" not in page


def test_text_page_shows_leave_one_out_and_lime_rows() -> None:
    at = page_app("text", timeout=900)
    at.run()
    assert no_exceptions(at)
    chosen = at.multiselect(key="txt_methods").value
    assert {"occlusion", "lime"} <= set(chosen)
    spec = plotly_specs(at)["txt_heatmaps"]
    text = str(spec["layout"].get("annotations", "")) + str([t.get("name", "") for t in spec["data"]])
    assert explainers.method("occlusion").label in text and explainers.method("lime").label in text
