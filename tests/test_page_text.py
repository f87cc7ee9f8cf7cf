"""Text and BERT-layers pages through AppTest: heatmaps, caching, bad input, local models."""

import json

import pytest
import torch
from transformers import BertModel

from tests.apptest_util import no_exceptions, page_app, plotly_specs
from tests.test_text_models import save_dir, tiny_bert

pytestmark = pytest.mark.slow

CLASSIFIERS = ("BertForSequenceClassification", "TextCNN")


class ForwardCounter:
    """Counts forward passes of any text classifier in this process (the apps' cached ones too)."""

    def __enter__(self):
        self.calls = 0
        self.handle = torch.nn.modules.module.register_module_forward_hook(self.hook)
        return self

    def hook(self, module, *_):
        self.calls += type(module).__name__ in CLASSIFIERS

    def __exit__(self, *_):
        self.handle.remove()


def text_app(model: str = "textcnn-sentiment", page: str = "text", prefix: str = "txt"):
    app = page_app(page, timeout=600)
    app.session_state[f"{prefix}_model"] = model
    app.run()
    assert no_exceptions(app)
    return app


@pytest.fixture(scope="module")
def cnn_app():
    return text_app()


def test_cnn_page_shows_every_method_and_facts(cnn_app):
    specs = plotly_specs(cnn_app)
    assert {"txt_probs", "txt_heatmaps", "txt_compare"} <= set(specs)
    titles = [a["text"] for a in specs["txt_heatmaps"]["layout"]["annotations"]]
    for label in ["Integrated Gradients", "Saliency", "Gradient x input", "Grad-CAM (text CNN)"]:
        assert label in titles
    assert any("convergence delta" in c.value for c in cnn_app.caption)
    labels = {b.proto.label for b in cnn_app.get("download_button")}
    assert {"Heatmaps as HTML", "Heatmaps as PNG", "Scores as CSV", "Scores as JSON", "Comparison as PNG"} <= labels


def test_display_toggles_run_no_model_pass(cnn_app):
    with ForwardCounter() as counter:
        cnn_app.toggle(key="txt_words").set_value(True).run()
        cnn_app.checkbox(key="txt_shared_scale").check().run()
        cnn_app.slider(key="txt_width").set_value(60).run()
    assert no_exceptions(cnn_app)
    assert counter.calls == 0
    cnn_app.toggle(key="txt_words").set_value(False).run()


def test_new_text_runs_the_model(cnn_app):
    with ForwardCounter() as counter:
        cnn_app.text_area(key="txt_text").input("An utterly charming and clever little film.").run()
    assert no_exceptions(cnn_app) and counter.calls > 0


@pytest.mark.parametrize(
    "text,message",
    [("", "empty"), ("   \n\t ", "empty")],
)
def test_empty_text_gets_a_message(cnn_app, text, message):
    cnn_app.text_area(key="txt_text").input(text).run()
    assert no_exceptions(cnn_app)
    assert any(message in e.value for e in cnn_app.error)


@pytest.mark.parametrize(
    "text",
    ["😀😂🎉", "good " * 5000, "bad\x00movie\x07 \x1b[31m", "この映画は本当に素晴らしかった。",
     "这部电影很好看", "Ein guter Film, un très bon film, очень хороший фильм"],
)
def test_unusual_text_is_explained(cnn_app, text):
    cnn_app.text_area(key="txt_text").input(text).run()
    assert no_exceptions(cnn_app)
    assert "txt_heatmaps" in plotly_specs(cnn_app) or cnn_app.error
    if text.startswith("good good"):
        assert any("only the first" in w.value for w in cnn_app.warning)


def test_bundled_bert_page_and_layers():
    app = text_app("minilm-sentiment")
    titles = [a["text"] for a in plotly_specs(app)["txt_heatmaps"]["layout"]["annotations"]]
    assert "Attention rollout" in titles and "Integrated Gradients" in titles
    layers = text_app("minilm-sentiment", "bert_layers", "bl")
    specs = plotly_specs(layers)
    assert {"bl_layers_predicted", "bl_layers_other class", "bl_attention_map", "bl_rollout"} <= set(specs)
    assert len(specs["bl_layers_predicted"]["layout"]["yaxis"]["ticktext"]) == 6
    assert {"As HTML", "As PNG"} <= {b.proto.label for b in layers.get("download_button")}
    with ForwardCounter() as counter:
        layers.radio(key="bl_normalise").set_value("global").run()
        layers.slider(key="bl_att_head").set_value(3).run()
    assert no_exceptions(layers) and counter.calls == 0
    layers.checkbox(key="bl_embeddings").check().run()
    assert len(plotly_specs(layers)["bl_layers_predicted"]["layout"]["yaxis"]["ticktext"]) == 7


def local_dir_app(path, page="text", prefix="txt"):
    app = page_app(page, timeout=600)
    app.session_state[f"{prefix}_model"] = "Local Hugging Face directory…"
    app.session_state[f"{prefix}_model_dir"] = str(path)
    app.run()
    assert no_exceptions(app)
    return app


def test_local_bert_directory_works_on_both_pages(tmp_path):
    save_dir(tmp_path, tiny_bert())
    app = local_dir_app(tmp_path)
    assert "txt_heatmaps" in plotly_specs(app)
    layers = local_dir_app(tmp_path, "bert_layers", "bl")
    assert {"bl_layers_predicted", "bl_attention_map"} <= set(plotly_specs(layers))


def test_bad_local_directories_get_messages(tmp_path):
    no_tokenizer = save_dir(tmp_path / "a", tiny_bert(), tokenizer=False)
    headless = save_dir(tmp_path / "b", tiny_bert(BertModel))
    remote = save_dir(tmp_path / "c", tiny_bert())
    config = json.loads((remote / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "evil.Model"}
    (remote / "config.json").write_text(json.dumps(config))
    for path, message in [(no_tokenizer, "tokenizer"), (headless, "classif"), (remote, "custom code"),
                          (tmp_path / "missing", "")]:
        app = local_dir_app(path)
        assert app.error, path
        assert message in app.error[0].value.lower() or message in app.error[0].value
        assert "txt_heatmaps" not in plotly_specs(app)


def test_score_these_maps_on_text(cnn_app):
    cnn_app.text_area(key="txt_text").input("A dull, lifeless film with one wonderful performance.").run()
    cnn_app.button(key="txt_score").click().run()
    assert no_exceptions(cnn_app)
    facts = [c.value for c in cnn_app.caption if "ms ·" in c.value or c.value.startswith("**")]
    scored = [f for f in facts if "deletion AUC" in f]
    assert len(scored) >= 3, facts
