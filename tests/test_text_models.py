"""Text registry: the shipped sentiment models (accuracy, loading) and local Hugging Face directories."""

import json
import logging
import re
import warnings
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

from explainers.errors import ExplainerError
from models.sentiment_data import SENTIMENT_LABELS, minilm_dir, sentiment_split
from models.text import ARTIFACTS, heldout_accuracy, load_text_model, minilm_classifier, text_models
from models.textcnn import TextCNN, load_textcnn, minilm_word_embeddings, save_textcnn


def card_accuracy(name: str) -> float:
    """The held-out accuracy a model card states, as a fraction."""
    card = (ARTIFACTS / name / "MODEL_CARD.md").read_text()
    return float(re.search(r"Held-out accuracy\*\*: ([\d.]+)%", card).group(1)) / 100


@pytest.fixture(scope="module")
def minilm():
    return load_text_model("minilm-sentiment")


@pytest.fixture(scope="module")
def textcnn():
    return load_text_model("textcnn-sentiment")


# --- the shared data split -------------------------------------------------------------------

def test_split_is_seeded_disjoint_and_complete():
    a, b = sentiment_split(), sentiment_split()
    assert a == b
    assert (len(a.train_texts), len(a.test_texts)) == (10202, 2550)
    assert not set(a.train_texts) & set(a.test_texts)
    assert sum(a.train_labels) + sum(a.test_labels) == 7368  # "fresh" snippets, duplicates dropped
    assert sentiment_split(seed=1).test_texts != a.test_texts


# --- shipped artefacts -----------------------------------------------------------------------

@pytest.mark.slow
def test_minilm_sentiment_heldout_accuracy(minilm):
    acc = heldout_accuracy(minilm)
    assert acc >= 0.80
    assert acc == pytest.approx(card_accuracy("minilm-sentiment"), abs=0.005)


def test_textcnn_heldout_accuracy_matches_card(textcnn):
    assert heldout_accuracy(textcnn) == pytest.approx(card_accuracy("textcnn-sentiment"), abs=0.005)


def test_artefacts_are_small_safetensors():
    files = [ARTIFACTS / "minilm-sentiment" / "adapter_model.safetensors",
             ARTIFACTS / "textcnn-sentiment" / "textcnn.safetensors"]
    for f in files:
        assert 0 < f.stat().st_size < 25 * 2**20
    assert not list(ARTIFACTS.rglob("*.bin")) and not list(ARTIFACTS.rglob("*.pt"))


# --- bundled BERT ----------------------------------------------------------------------------

def test_minilm_is_merged_eval_and_eager(minilm):
    net = minilm.net
    assert type(net) is BertForSequenceClassification
    assert not any(m.training for m in net.modules())
    assert not any("peft" in type(m).__module__ for m in net.modules())
    assert not any("lora" in n or "modules_to_save" in n for n, _ in net.named_parameters())
    assert (minilm.labels, minilm.kind, minilm.name) == (SENTIMENT_LABELS, "bert", "minilm-sentiment")
    assert net.config.id2label == {0: "negative", 1: "positive"}
    enc = minilm.encode(["a fine film"])
    out = net(**enc, output_attentions=True)
    assert len(out.attentions) == 6 and out.attentions[0].shape[1] == 12


def test_minilm_merged_matches_unmerged_adapter(minilm):
    texts = sentiment_split().test_texts[:16]
    adapter = PeftModel.from_pretrained(minilm_classifier(), ARTIFACTS / "minilm-sentiment").eval()
    enc = minilm.encode(texts)
    with torch.no_grad():
        unmerged = adapter(**enc).logits
    assert torch.allclose(minilm.logits(texts), unmerged, atol=1e-4)
    # The adapter must carry the trained head: a fresh head would not agree.
    with torch.no_grad():
        assert not torch.allclose(minilm_classifier()(**enc).logits, unmerged, atol=1e-2)


LOAD_NOISE = ("LOAD REPORT", "MISSING", "newly initialized", "Loading weights", "Warning", "warn")


@pytest.mark.parametrize("name", [info.name for info in text_models()])
def test_bundled_models_load_silently(name, capfd, caplog):
    """A model we build and load ourselves prints no load report (its head's "missing" weights come
    from the adapter), no progress bar, no warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        caplog.set_level(logging.INFO)
        load_text_model(name)
    out, err = capfd.readouterr()
    assert not [n for n in LOAD_NOISE if n in out + err], out + err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert not caught, [str(w.message) for w in caught]


def test_local_directory_missing_weights_still_refused_loudly(tmp_path):
    """A user's directory whose classifier weights are genuinely missing: refused with a message."""
    without_head(save_dir(tmp_path, tiny_bert()))
    with pytest.raises(ExplainerError, match=r"lack 2 tensors .*classifier\..*head would be random"):
        load_text_model(tmp_path)


@pytest.mark.parametrize("fixture", ["minilm", "textcnn"])
def test_clear_sentences_are_classified(fixture, request):
    model = request.getfixturevalue(fixture)
    texts = ["A moving, beautifully acted and wonderful film.",
             "A dull, tedious mess with terrible acting; a waste of time."]
    assert model.logits(texts).argmax(-1).tolist() == [1, 0]


# --- bundled text CNN ------------------------------------------------------------------------

def test_textcnn_layout_and_padding_invariance(textcnn):
    net = textcnn.net
    assert isinstance(net, TextCNN) and textcnn.kind == "cnn" and not net.training
    assert not net.embed.weight.requires_grad
    assert torch.equal(net.embed.weight, minilm_classifier().bert.embeddings.word_embeddings.weight)
    assert not any(k.startswith("embed") for k in net.trained_state())
    enc = textcnn.encode(["great", "a long, slow and ultimately rather boring story"])
    captured = {}
    hooks = [dict(net.named_modules())[f"convs.{i}"].register_forward_hook(
        lambda m, i, o, k=i: captured.__setitem__(k, o)) for i in range(len(net.convs))]
    try:
        batch = net(**enc)
    finally:
        for h in hooks:
            h.remove()
    T = enc["input_ids"].shape[1]
    assert len(captured) >= 2 and all(o.shape == (2, 100, T) for o in captured.values())
    alone = net(**textcnn.encode(["great"]))
    assert torch.allclose(batch[0], alone[0], atol=1e-5)


# --- registry and local directories ----------------------------------------------------------

def test_text_models_lists_bundled_entries():
    entries = text_models()
    assert [e.name for e in entries] == ["multilingual-sentiment", "minilm-sentiment", "textcnn-sentiment"]
    assert all(e.offline_ok and e.description for e in entries)


def tiny_bert(cls=BertForSequenceClassification):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=96,
                        id2label={0: "bad", 1: "meh", 2: "good"})
    return cls(config).eval()


def save_dir(path: Path, model, tokenizer: bool = True) -> Path:
    model.save_pretrained(path)
    if tokenizer:
        AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(path)
    return path


def without_head(path: Path) -> Path:
    """Drop the classifier's tensors from the saved weights of ``path`` (a genuinely incomplete checkpoint)."""
    weights = load_file(str(path / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.startswith("classifier.")}, str(path / "model.safetensors"),
              metadata={"format": "pt"})
    return path


def test_local_directory_loads_with_its_labels(tmp_path):
    reference = tiny_bert()
    model = load_text_model(save_dir(tmp_path, reference))
    assert model.labels == ["bad", "meh", "good"]
    assert model.kind == "bert" and model.max_length == 96 and not model.net.training
    enc = model.encode(["an ordinary sentence"])
    with torch.no_grad():
        assert torch.equal(model.net(**enc).logits, reference(**enc).logits)
        assert model.net(**enc, output_attentions=True).attentions is not None


def test_local_directory_with_bin_weights_loads(tmp_path):
    reference = tiny_bert()
    save_dir(tmp_path, reference)
    (tmp_path / "model.safetensors").unlink()
    torch.save(reference.state_dict(), tmp_path / "pytorch_model.bin")
    model = load_text_model(tmp_path)
    enc = model.encode(["an ordinary sentence"])
    with torch.no_grad():
        assert torch.equal(model.net(**enc).logits, reference(**enc).logits)


def test_refuses_custom_code(tmp_path):
    save_dir(tmp_path, tiny_bert())
    config = json.loads((tmp_path / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.EvilModel"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExplainerError, match="custom code"):
        load_text_model(tmp_path)


def test_refuses_directory_without_tokenizer(tmp_path):
    save_dir(tmp_path, tiny_bert(), tokenizer=False)
    with pytest.raises(ExplainerError, match="no tokenizer"):
        load_text_model(tmp_path)


def test_refuses_non_classification_model(tmp_path):
    save_dir(tmp_path, tiny_bert(BertModel))
    with pytest.raises(ExplainerError, match="not a sequence classifier"):
        load_text_model(tmp_path)


def test_refuses_classifier_config_without_head_weights(tmp_path):
    save_dir(tmp_path, tiny_bert(BertModel))
    config = json.loads((tmp_path / "config.json").read_text())
    config["architectures"] = ["BertForSequenceClassification"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExplainerError, match="head would be random"):
        load_text_model(tmp_path)


@pytest.mark.parametrize("name", ["no-such-model", "/no/such/dir"])
def test_refuses_unknown_name_or_missing_path(name):
    with pytest.raises(ExplainerError, match="Unknown text model"):
        load_text_model(name)


@pytest.mark.parametrize("pooling, expected", [("max", 3.0), ("mean", 2.0)])
def test_textcnn_pooling_by_hand(pooling, expected):
    # Width-1 conv summing the two embedding dims; token 0 is padding with a large embedding
    # that must be ignored: real tokens give conv outputs 1 and 3.
    embeddings = torch.tensor([[5.0, 5.0], [1.0, 0.0], [0.0, 3.0]])
    net = TextCNN(embeddings, kernel_sizes=(1,), channels=1, pooling=pooling).eval()
    with torch.no_grad():
        net.convs[0][0].weight.fill_(1.0)
        net.convs[0][0].bias.zero_()
        net.head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        net.head.bias.zero_()
    logits = net(torch.tensor([[1, 2, 0]]), torch.tensor([[1, 1, 0]]))
    assert logits.tolist() == [[expected, -expected]]


def test_textcnn_checkpoint_round_trip_and_refusal(tmp_path):
    torch.manual_seed(0)
    net = TextCNN(minilm_word_embeddings(), kernel_sizes=(3,), channels=4, pooling="mean").eval()
    save_textcnn(net, tmp_path / "cnn.safetensors")
    loaded = load_textcnn(tmp_path / "cnn.safetensors")
    assert loaded.hparams == net.hparams
    ids = torch.tensor([[101, 2307, 2143, 102]])
    assert torch.equal(loaded(ids), net(ids))
    save_file({"w": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ExplainerError, match="not a text-CNN checkpoint"):
        load_textcnn(tmp_path / "other.safetensors")
