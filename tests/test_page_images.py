"""The Images page through AppTest: controls, caching (no model pass on display changes), bad input."""

import io
import re

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from models.efficientnet_lite import EfficientNetLite
from tests.apptest_util import no_exceptions, page_app, plotly_array, plotly_specs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def at():
    app = page_app("images", timeout=600)
    app.run()
    assert no_exceptions(app)
    return app


def grid(app) -> dict:
    return plotly_specs(app)["img_grid"]


def heatmaps(spec) -> list[dict]:
    return [t for t in spec["data"] if t["type"] == "heatmap"]


class ForwardCounter:
    """Counts forward passes of any EfficientNet-Lite in this process (the app's cached model too),
    and of the folded copies (fx GraphModules) that SmoothGrad and IG run on."""

    def __init__(self):
        self.calls = 0
        self.handle = torch.nn.modules.module.register_module_forward_hook(self.hook)

    def hook(self, module, *_):
        self.calls += isinstance(module, (EfficientNetLite, torch.fx.GraphModule))

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.handle.remove()


def test_default_grid_has_one_map_per_method(at):
    spec = grid(at)
    assert len(heatmaps(spec)) == 4
    titles = [re.sub("<[^>]+>", "", a["text"]) for a in spec["layout"]["annotations"]]
    assert {"CAM", "Grad-CAM", "Grad-CAM++", "Saliency"} <= set(titles), titles
    assert any(t.startswith("tiger cat (predicted, ") for t in titles)
    facts = [c.value for c in at.caption if "target" in c.value]
    assert len(facts) == 4 and all("tiger cat" in f for f in facts)
    assert any("layer `_head_act`" in f for f in facts)


def test_methods_that_cannot_read_the_model_are_not_offered(at):
    """The bundled CNN has no class-token attention: the attention maps are left out of the methods box
    (and of "All methods"), and a caption names them and says why."""
    offered = at.multiselect(key="img_methods").options
    assert "Grad-CAM" in offered and not any("rollout" in o.lower() or "attention" in o.lower() for o in offered), offered
    note = [c.value for c in at.caption if c.value.startswith("Not offered for this model")]
    assert len(note) == 1 and "Attention rollout" in note[0] and "vision transformer" in note[0], note


def test_display_controls_act_in_the_browser_and_a_layout_change_runs_no_model_pass(at):
    spec = grid(at)
    layout, maps = spec["layout"], heatmaps(spec)
    heat_at = [i for i, t in enumerate(spec["data"]) if t["type"] == "heatmap"]
    opacity = layout["sliders"][0]
    assert all(step["method"] == "restyle" and step["args"][1] == heat_at for step in opacity["steps"])
    colours, scales = (m["buttons"] for m in layout["updatemenus"])
    sequential = {t["coloraxis"] for t in maps if layout[t["coloraxis"]]["cmin"] >= 0}
    signed = {t["coloraxis"] for t in maps} - sequential  # CAM is signed in its record: diverging
    assert signed and all({k.split(".")[0] for k in b["args"][0]} == sequential for b in colours)
    shared = next(b for b in scales if b["label"].startswith("Scale: shared per family, clipped"))["args"][0]
    assert all(shared[f"{a}.cmin"] == -shared[f"{a}.cmax"] for a in signed)
    before = maps[0]
    with ForwardCounter() as counter:
        at.slider(key="img_columns").set_value(2).run()
    assert no_exceptions(at)
    assert counter.calls == 0
    after = heatmaps(grid(at))[0]
    np.testing.assert_array_equal(plotly_array(after["z"]), plotly_array(before["z"]))
    assert grid(at)["layout"]["width"] < spec["layout"]["width"]
    at.slider(key="img_columns").set_value(4).run()


def test_second_target_adds_a_row_with_one_shared_pass(at):
    options = at.multiselect(key="img_targets").options
    with ForwardCounter() as counter:
        at.multiselect(key="img_targets").select(options[1]).run()
    assert no_exceptions(at)
    assert len(heatmaps(grid(at))) == 8
    # CAM, Grad-CAM and Grad-CAM++ share one forward, and saliency rides on its backward.
    assert counter.calls == 1
    at.multiselect(key="img_targets").set_value(options[:1]).run()
    assert len(heatmaps(grid(at))) == 4


def test_ig_shows_progress_facts_and_delta(at):
    at.checkbox(key="img_ig_adaptive").uncheck().run()
    at.slider(key="img_ig_steps").set_value(16)
    at.multiselect(key="img_methods").set_value(["grad_cam", "integrated_gradients"]).run()
    assert no_exceptions(at)
    facts = [c.value for c in at.caption if "Integrated Gradients" in c.value]
    assert facts and "delta" in facts[0] and "16 steps" in facts[0]
    assert len(heatmaps(grid(at))) == 2
    at.checkbox(key="img_ig_adaptive").check().run()
    assert no_exceptions(at)
    facts = [c.value for c in at.caption if "Integrated Gradients" in c.value]
    assert "delta ok" in facts[0] and "16 steps" not in facts[0]


def test_noisy_methods_share_their_noisy_passes_on_the_page(at):
    """SmoothGrad, VarGrad and Smooth Grad-CAM++ together: one explainer call for the three (one
    layer pass + the noisy copies' passes, as many as SmoothGrad alone makes), not three."""
    at.slider(key="img_sg_samples").set_value(6)
    at.multiselect(key="img_methods").set_value(["grad_cam"]).run()
    runs = at.session_state["explainer_runs"]
    with ForwardCounter() as together:
        at.multiselect(key="img_methods").set_value(["grad_cam", "smoothgrad", "vargrad", "smooth_grad_cam_plus_plus"]).run()
    assert no_exceptions(at)
    assert at.session_state["explainer_runs"] == runs + 1
    assert len(heatmaps(grid(at))) == 4 and not [e for e in at.error]
    at.number_input(key="img_seed").set_value(1)
    at.multiselect(key="img_methods").set_value(["grad_cam"]).run()
    with ForwardCounter() as alone:
        at.multiselect(key="img_methods").set_value(["grad_cam", "smoothgrad"]).run()
    assert together.calls == alone.calls + 1  # + the layer pass Smooth Grad-CAM++ reads its activations from
    at.number_input(key="img_seed").set_value(0)
    at.slider(key="img_sg_samples").set_value(25)
    at.multiselect(key="img_methods").set_value(["cam", "grad_cam", "grad_cam_plus_plus", "saliency"]).run()


def test_one_by_one_layer_gets_a_hint(at):
    at.selectbox(key="img_layer").select("_avg_pooling").run()
    assert no_exceptions(at)
    assert any("1x1" in w.value for w in at.warning)
    at.selectbox(key="img_layer").select("_head_act").run()


def encode(image, fmt="PNG"):
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


BAD_UPLOADS = {
    "truncated.png": (encode(Image.new("RGB", (64, 64), "red"))[:60], "damaged"),
    "text.jpg": (b"just some text, not an image", "not an image"),
    "doc.jpg": (b"%PDF-1.4 fake pdf", "not an image"),
    "empty.png": (b"", "empty"),
    "bomb.png": (encode(Image.new("L", (10_000, 10_000))), "decompression bomb"),
}
GOOD_UPLOADS = {
    "tiny.png": encode(Image.new("RGB", (1, 1), "blue")),
    "cmyk.jpg": encode(Image.new("CMYK", (50, 80), (0, 255, 0, 0)), "JPEG"),
    "grey16.png": encode(Image.fromarray(np.arange(60 * 40, dtype=np.uint16).reshape(60, 40) * 20)),
    "rgba.png": encode(Image.new("RGBA", (30, 30), (0, 0, 0, 0))),
}


@pytest.fixture(scope="module")
def upload_app():
    app = page_app("images", timeout=600)
    app.run()
    app.radio(key="img_source").set_value("Upload").run()
    assert no_exceptions(app)
    return app


@pytest.mark.parametrize("name", sorted(BAD_UPLOADS))
def test_bad_uploads_get_a_message_and_the_page_survives(upload_app, name):
    data, message = BAD_UPLOADS[name]
    upload_app.file_uploader(key="img_upload").set_value((name, data, "image/png")).run()
    assert no_exceptions(upload_app)
    assert any(message in e.value for e in upload_app.error), [e.value for e in upload_app.error]
    assert upload_app.radio(key="img_source").value == "Upload"  # the rest of the page still renders


@pytest.mark.parametrize("name", sorted(GOOD_UPLOADS))
def test_unusual_but_valid_uploads_are_explained(upload_app, name):
    upload_app.file_uploader(key="img_upload").set_value((name, GOOD_UPLOADS[name], "image/png")).run()
    assert no_exceptions(upload_app)
    assert not upload_app.error, [e.value for e in upload_app.error]
    assert len(heatmaps(grid(upload_app))) == len(upload_app.multiselect(key="img_methods").value)


def test_cam_on_a_model_without_gap_head_is_refused_in_its_panel(tmp_path):
    app = page_app("images", timeout=600)
    app.run()
    app.radio(key="img_model_source").set_value("Your torchvision checkpoint").run()
    app.selectbox(key="img_arch").select("mobilenet_v3_small").run()
    net = torchvision.models.mobilenet_v3_small(num_classes=10)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    app.file_uploader(key="img_checkpoint").set_value(("mnv3.pt", buf.getvalue(), "application/octet-stream")).run()
    app.multiselect(key="img_methods").set_value(["cam", "grad_cam"]).run()
    assert no_exceptions(app)
    facts = [c.value for c in app.caption if "CAM" in c.value]
    assert any(":red[" in f and "CAM" in f for f in facts), facts
    assert any(f.startswith("**Grad-CAM**") and ":red[" not in f for f in facts), facts


def test_checkpoint_for_wrong_architecture_gets_a_message():
    app = page_app("images", timeout=600)
    app.run()
    app.radio(key="img_model_source").set_value("Your torchvision checkpoint").run()
    buf = io.BytesIO()
    torch.save(torchvision.models.mobilenet_v2(num_classes=3).state_dict(), buf)
    app.file_uploader(key="img_checkpoint").set_value(("m.pt", buf.getvalue(), "application/octet-stream")).run()
    assert no_exceptions(app)
    assert any("does not fit resnet18" in e.value for e in app.error)
    assert "img_topk" in plotly_specs(app)  # falls back to the bundled model and keeps working


def test_score_these_maps_puts_auc_under_each_map(at):
    at.multiselect(key="img_methods").set_value(["grad_cam", "saliency"]).run()
    at.button(key="img_score").click().run()
    assert no_exceptions(at)
    facts = [c.value for c in at.caption if "target" in c.value]
    assert len(facts) == 2 and all("deletion AUC" in f and "insertion AUC" in f for f in facts), facts
    at.slider(key="img_columns").set_value(3).run()  # scores stay after a display change
    assert all("deletion AUC" in c.value for c in at.caption if "target" in c.value)
