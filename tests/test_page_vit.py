"""The Images and Gallery pages (AppTest) on a user's ViT: a Hugging Face directory and a torchvision
ViT checkpoint, both small random-init models saved here; every map the page draws comes with the
token layer's grid and no error."""

from __future__ import annotations

import pytest

from tests.apptest_util import no_exceptions, page_app, plotly_specs
from tests.vit_support import save_hf_vit, save_user_vit_checkpoint

pytestmark = pytest.mark.slow


def heatmaps(at) -> int:
    """Heatmaps in the last map grid drawn (the grid's key changes as the page's stages finish)."""
    grids = [spec for key, spec in plotly_specs(at).items() if key.startswith("img_grid")]
    return sum(trace.get("type") == "heatmap" for trace in grids[-1]["data"])


def test_images_page_on_a_hugging_face_directory(tmp_path):
    save_hf_vit(tmp_path)
    at = page_app("images", timeout=600).run()
    at.radio(key="img_model_source").set_value("Your Hugging Face directory").run()
    at.text_input(key="img_hf_dir").set_value(str(tmp_path)).run()
    at.multiselect(key="img_methods").set_value(["grad_cam", "gradient_rollout", "saliency"]).run()
    assert no_exceptions(at) and not at.error, [e.value for e in at.error]
    assert heatmaps(at) == 3
    layer = at.selectbox(key="img_layer")
    assert layer.value == "model.vit.layers.2.layernorm_before"
    assert "32 x 6x6 (tokens, 1 non-patch token dropped)" in layer.format_func(layer.value)
    facts = [c.value for c in at.caption if c.value.startswith("**")]
    assert any("Grad-CAM" in f and "layernorm_before" in f and "kind" in f for f in facts), facts


def test_images_page_on_a_torchvision_vit_checkpoint(tmp_path):
    save_user_vit_checkpoint(tmp_path / "vit.safetensors")
    data = (tmp_path / "vit.safetensors").read_bytes()
    at = page_app("images", timeout=600).run()
    at.radio(key="img_model_source").set_value("Your torchvision checkpoint").run()
    at.selectbox(key="img_arch").select("vit_b_16").run()
    at.file_uploader(key="img_checkpoint").set_value(("vit.safetensors", data, "application/octet-stream")).run()
    at.multiselect(key="img_methods").set_value(["grad_cam", "attention_rollout"]).run()
    assert no_exceptions(at) and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="img_layer").value == "encoder.layers.encoder_layer_1.ln_1"
    assert heatmaps(at) == 2


def test_gallery_on_a_hugging_face_directory(tmp_path):
    save_hf_vit(tmp_path)
    at = page_app("gallery", timeout=600).run()
    at.radio(key="gal_model_source").set_value("Your Hugging Face directory").run()
    at.text_input(key="gal_hf_dir").set_value(str(tmp_path)).run()
    at.multiselect(key="gal_methods").set_value(["cam", "grad_cam", "saliency"]).run()
    at.button(key="gal_run").click().run()
    assert no_exceptions(at) and not at.error, [e.value for e in at.error]
    frame = at.dataframe[0].value
    assert frame["Predicted"].str.startswith("kind").all()
    assert (frame["Failed"] == "CAM").all(), "CAM refuses a ViT block; the rest of the shared pass still runs"
    assert [k for k in plotly_specs(at) if k.startswith("gal_grid_")]


def test_a_bad_directory_gets_its_message_and_the_page_keeps_working(tmp_path):
    at = page_app("images", timeout=600).run()
    at.radio(key="img_model_source").set_value("Your Hugging Face directory").run()
    at.text_input(key="img_hf_dir").set_value(str(tmp_path)).run()
    assert no_exceptions(at)
    assert any("no config.json" in e.value for e in at.error), [e.value for e in at.error]
    assert "img_topk" in plotly_specs(at)  # the bundled model meanwhile
