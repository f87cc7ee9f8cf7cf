"""Text and BERT-layers pages through AppTest: heatmaps, caching, bad input, local models."""

import json

import pytest
import torch
from transformers import BertModel

from tests.apptest_util import no_exceptions, page_app, plotly_array, plotly_specs
from tests.test_text_models import save_dir, tiny_bert, without_head

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
    for label in ["Integrated Gradients", "Saliency", "Input x gradient", "Grad-CAM"]:
        assert label in titles
    row = titles.index("Integrated Gradients")
    axis = "y" if row == 0 else f"y{row + 1}"
    notes = [a for a in specs["txt_heatmaps"]["layout"]["annotations"] if a["text"].startswith("Convergence delta")]
    assert len(notes) == 1 and notes[0]["yref"] == axis  # under IG's row, not under another
    ig_traces = [t for t in specs["txt_heatmaps"]["data"] if t.get("yaxis", "y") == axis]
    tokens = sum(len(plotly_array(t["y"])) for t in ig_traces)
    assert tokens > 0 and notes[0]["y"] > max(plotly_array(ig_traces[0]["y"]))
    labels = {b.proto.label for b in cnn_app.get("download_button")}
    assert {"Heatmaps as HTML", "Heatmaps as PNG", "Scores as CSV", "Scores as JSON", "Comparison as PNG"} <= labels


def test_signed_methods_get_a_diverging_scale_and_the_comparison_one_scale(cnn_app):
    layout = plotly_specs(cnn_app)["txt_heatmaps"]["layout"]
    axes = {k: v for k, v in layout.items() if k.startswith("coloraxis")}
    assert len(axes) == len(layout["annotations"]) - 1  # one scale per row (minus IG's note)
    titles = [a["text"] for a in layout["annotations"] if not a["text"].startswith("Convergence delta")]
    name = lambda label: "coloraxis" if titles.index(label) == 0 else f"coloraxis{titles.index(label) + 1}"
    ig, saliency = axes[name("Integrated Gradients")], axes[name("Saliency")]
    assert ig["cmin"] == -ig["cmax"] and saliency["cmin"] == 0
    compare = plotly_specs(cnn_app)["txt_compare"]
    assert [k for k in compare["layout"] if k.startswith("coloraxis")] == ["coloraxis"]
    assert {t["marker"].get("coloraxis") for t in compare["data"] if "coloraxis" in t["marker"]} == {"coloraxis"}
    assert compare["layout"]["coloraxis"]["cmin"] == -compare["layout"]["coloraxis"]["cmax"]  # IG: signed
    first, second = (a["text"] for a in compare["layout"]["annotations"][:2])  # first text above, each with its answer
    assert first.startswith("“good”: the model says ") and second.startswith("“not good”: the model says ")


def test_display_toggles_run_no_model_pass(cnn_app):
    with ForwardCounter() as counter:
        cnn_app.toggle(key="txt_words").set_value(True).run()
        cnn_app.checkbox(key="txt_shared_scale").check().run()
        cnn_app.slider(key="txt_width").set_value(60).run()
    assert no_exceptions(cnn_app)
    assert counter.calls == 0
    cnn_app.toggle(key="txt_words").set_value(False).run()


def test_example_selector_names_the_text_in_the_box():
    from pages.text import EXAMPLES, OWN_TEXT

    app = text_app()
    selector = lambda: app.selectbox(key="txt_example").value
    assert selector() == "Positive" and app.text_area(key="txt_text").value == EXAMPLES["Positive"]
    app.selectbox(key="txt_example").set_value("Japanese").run()
    assert app.text_area(key="txt_text").value == EXAMPLES["Japanese"] and selector() == "Japanese"
    typed = "An utterly charming and clever little film."
    app.text_area(key="txt_text").input(typed).run()  # an English text typed over the Japanese example
    assert selector() == OWN_TEXT
    app.selectbox(key="txt_example").set_value("Negative").run()
    app.text_area(key="txt_text").input(EXAMPLES["Negative"] + " Still, I laughed.").run()  # an edited example
    assert selector() == OWN_TEXT
    app.selectbox(key="txt_example").set_value("Mixed").run()
    app.selectbox(key="txt_example").set_value(OWN_TEXT).run()  # back to the text typed last
    assert app.text_area(key="txt_text").value == EXAMPLES["Negative"] + " Still, I laughed."
    app.text_area(key="txt_text").input(EXAMPLES["Chinese: a good hotel"]).run()  # an example typed in full
    assert selector() == "Chinese: a good hotel"
    assert no_exceptions(app)


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
    tokens = [t for t in plotly_specs(app)["txt_heatmaps"]["data"] if t["type"] == "bar"]  # not the colour-bar carriers
    assert any("[CLS]" in t["text"] for t in tokens) and all("word:" in t["hovertemplate"] for t in tokens)
    app.toggle(key="txt_words").set_value(True).run()
    words = [t for t in plotly_specs(app)["txt_heatmaps"]["data"] if t["type"] == "bar"]
    assert not any("[CLS]" in t["text"] for t in words) and not any("word:" in t["hovertemplate"] for t in words)
    assert "txt_dl_png" in {b.proto.id.rsplit("-", 1)[-1] for b in app.get("download_button")}
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
        for page, prefix, chart in [("text", "txt", "txt_heatmaps"), ("bert_layers", "bl", "bl_layers_predicted")]:
            app = local_dir_app(path, page, prefix)
            assert app.error, (path, page)
            assert message in app.error[0].value.lower() or message in app.error[0].value
            assert chart not in plotly_specs(app)


def test_local_directory_with_missing_weights_gets_a_message_on_both_pages(tmp_path):
    without_head(save_dir(tmp_path, tiny_bert()))
    for page, prefix, chart in [("text", "txt", "txt_heatmaps"), ("bert_layers", "bl", "bl_layers_predicted")]:
        app = local_dir_app(tmp_path, page, prefix)
        assert any("lack 2 tensors" in e.value and "head would be random" in e.value for e in app.error), page
        assert chart not in plotly_specs(app)


def test_score_these_maps_on_text(cnn_app):
    cnn_app.text_area(key="txt_text").input("A dull, lifeless film with one wonderful performance.").run()
    cnn_app.button(key="txt_score").click().run()
    assert no_exceptions(cnn_app)
    facts = [c.value for c in cnn_app.caption if "ms ·" in c.value or c.value.startswith("**")]
    scored = [f for f in facts if "deletion AUC" in f]
    assert len(scored) >= 3, facts


def layer_result(last_row, tokens=("[CLS]", "good", "[SEP]")):
    """A per-layer Grad-CAM result with an embeddings row and one encoder layer (no model)."""
    import numpy as np

    from explainers.text import TextAttribution
    from ui.text_results import TextResult

    scores = np.array([[0.1, 0.6, 0.3], last_row], dtype=float)
    attribution = TextAttribution("good", list(tokens), [True, False, True], scores, ["good"], scores[:, 1:2], [-1, 0, -1],
                                  1, "layer_grad_cam", ["bert.embeddings", "bert.encoder.layer.0"])
    return TextResult("layer_grad_cam", attribution)


def cls_note_script(last_row):
    from pages.bert_layers import cls_note
    from tests.test_page_text import layer_result

    cls_note(layer_result(last_row))


@pytest.mark.parametrize("last_row, shown", [([0.9, 0.05, 0.05], True), ([0.2, 0.7, 0.1], False), ([0.0, 0.0, 0.0], False)])
def test_cls_note_only_when_the_last_layer_sits_on_cls(last_row, shown):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(cls_note_script, args=(last_row,)).run()
    assert no_exceptions(app)
    assert bool(app.info) == shown
    if shown:
        assert "90%" in app.info[0].value and "not a bug" in app.info[0].value


def test_layer_table_has_every_layer_and_token():
    from pages.bert_layers import layer_table

    table = layer_table(layer_result([0.5, 0.25, 0.25], tokens=("[CLS]", 'a,"b"', "[SEP]")), "positive")
    assert len(table) == 6
    assert table[0] == {"class": "positive", "layer": "embeddings", "index": 0, "token": "[CLS]", "special": True,
                        "score": 0.1}
    assert table[4] == {"class": "positive", "layer": "layer 1", "index": 1, "token": 'a,"b"', "special": False,
                        "score": 0.25}


@pytest.fixture(scope="module")
def layers_cnn_app():
    return text_app("textcnn-sentiment", "bert_layers", "bl")


@pytest.mark.parametrize(
    "text,message",
    [("", "empty"), ("   \n\t ", "empty"), ("😀😂🎉", None), ("good " * 5000, None)],
)
def test_layers_page_bad_text(layers_cnn_app, text, message):
    layers_cnn_app.text_area(key="bl_text").input(text).run()
    assert no_exceptions(layers_cnn_app)
    if message:
        assert any(message in e.value for e in layers_cnn_app.error)
        assert "bl_layers_predicted" not in plotly_specs(layers_cnn_app)
    else:
        assert {"bl_layers_predicted", "bl_layers_other class"} <= set(plotly_specs(layers_cnn_app))
    assert any("only the first" in w.value for w in layers_cnn_app.warning) == text.startswith("good good")


def test_layers_page_on_the_text_cnn_says_it_has_no_attention(layers_cnn_app):
    layers_cnn_app.text_area(key="bl_text").input("A warm, funny film.").run()
    assert no_exceptions(layers_cnn_app)
    assert any("no attention layers" in e.value for e in layers_cnn_app.error)
    assert {"bl_layers_predicted", "bl_layers_other class"} <= set(plotly_specs(layers_cnn_app))
    labels = [b.proto.label for b in layers_cnn_app.get("download_button")]
    assert labels.count("As CSV") == 2 and labels.count("As JSON") == 2 and labels.count("As PNG") == 2
