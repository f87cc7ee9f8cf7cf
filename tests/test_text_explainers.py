"""Text explainers: oracles (captum, per-layer references, hand-computed cases), word merging,
hygiene (hooks, train/eval, requires_grad, grad mode, after failures too) and bad input."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from captum._utils.gradient import compute_layer_gradients_and_eval
from captum.attr import IntegratedGradients, LayerGradientXActivation, LayerIntegratedGradients
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

import explainers
from explainers.errors import ExplainerError
from explainers.text import (
    TEXT_METHODS,
    explain_text,
    explain_text_many,
    prepare_text,
    rollout,
    text_methods,
)
from explainers.text_words import merge_words, word_groups
from models.textcnn import TextCNN

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ENGLISH = ("the a movie film was is it i not very good bad great boring love hate play act un "
           "##ing ##s ##ly ##or ##believ ##able . , !").split()
JAPANESE_TEXT = "この映画は本当に素晴らしい。"
SENTENCE = "the movie was not very good , i hate boring acting !"


def _tokenizer(tmp_path, words) -> BertTokenizerFast:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(SPECIALS + list(words)) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab=str(path))  # transformers 5: `vocab` takes the file


def _tiny_bert(vocab_size: int, seed: int = 0, attn: str = "eager") -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, num_labels=3,
                        initializer_range=0.3, attn_implementation=attn)
    return BertForSequenceClassification(config).eval()


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    tokenizer = _tokenizer(tmp_path_factory.mktemp("en"), ENGLISH)
    return _tiny_bert(len(tokenizer)), tokenizer


@pytest.fixture(scope="module")
def japanese(tmp_path_factory):
    chars = sorted(set(JAPANESE_TEXT))
    tokenizer = _tokenizer(tmp_path_factory.mktemp("ja"), chars + [f"##{c}" for c in chars])
    return _tiny_bert(len(tokenizer), seed=1), tokenizer


def _forward(model):
    def forward(ids):
        return model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids)).logits
    return forward


def _ids(tokenizer, text):
    return tokenizer(text, return_tensors="pt")["input_ids"]


def _rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


# --- word merging ---------------------------------------------------------------------------

def test_wordpiece_merging_sums_pieces_and_skips_specials(english):
    _, tokenizer = english
    prepared = prepare_text(_tiny_bert(len(tokenizer)), tokenizer, "unbelievable acting plays")
    assert prepared.tokens == ["[CLS]", "un", "##believ", "##able", "act", "##ing", "play", "##s", "[SEP]"]
    assert prepared.special == [True] + [False] * 7 + [True]
    scores = np.arange(9, dtype=np.float64)
    words, word_scores, token_word = merge_words(prepared.tokens, prepared.special, scores, "continuation", tokenizer)
    assert words == ["unbelievable", "acting", "plays"]
    np.testing.assert_allclose(word_scores, [1 + 2 + 3, 4 + 5, 6 + 7])
    assert token_word == [-1, 0, 0, 0, 1, 1, 2, 2, -1]


def test_sentencepiece_and_bpe_markers_start_words():
    sp = ["<s>", "▁un", "believ", "able", "▁film", "!", "</s>"]
    special = [True, False, False, False, False, False, True]
    words, scores, _ = merge_words(sp, special, np.ones((2, 7)), "start")
    assert words == ["unbelievable", "film!"]
    np.testing.assert_allclose(scores, [[3, 2], [3, 2]])
    bpe = ["<s>", "Hello", "Ġwor", "ld", "Ġ!", "</s>"]
    assert word_groups(bpe, [True, False, False, False, False, True], "start") == [[1], [2, 3], [4]]
    # a piece right after a special token starts a word even without a marker
    assert word_groups(["<s>", "ld", "</s>", "ld"], [True, False, True, False], "start") == [[1], [3]]
    # a continuation piece right after a special token starts a word too
    assert word_groups(["[CLS]", "##s", "x"], [True, False, False], "continuation") == [[1], [2]]


# --- oracles on a tiny random BERT ------------------------------------------------------------

@pytest.mark.parametrize("baseline, token", [("pad", "[PAD]"), ("mask", "[MASK]")])
def test_integrated_gradients_matches_captum_layer_ig(english, baseline, token):
    model, tokenizer = english
    ids = _ids(tokenizer, SENTENCE)
    special = torch.tensor(tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)).bool()
    base_ids = torch.where(special, ids, torch.full_like(ids, tokenizer.convert_tokens_to_ids(token)))
    result = explain_text(model, tokenizer, SENTENCE, "integrated_gradients", target=1, baseline=baseline, tolerance=0)
    lig = LayerIntegratedGradients(_forward(model), model.bert.embeddings.word_embeddings)
    attr, delta = lig.attribute(ids, baselines=base_ids, target=1, n_steps=50, method="gausslegendre",
                                return_convergence_delta=True)
    expected = attr.sum(-1)[0].detach().numpy()
    assert _rel_err(result.scores, expected) <= 1e-4
    assert result.extras["delta"] == pytest.approx(float(delta), abs=1e-4)
    assert np.abs(expected).max() > 1e-3  # not a near-zero comparison


def test_integrated_gradients_zero_baseline_matches_captum_ig(english):
    model, tokenizer = english
    ids = _ids(tokenizer, SENTENCE)
    embeds = model.bert.embeddings.word_embeddings(ids).detach()

    def from_embeddings(e):
        n = e.shape[0]
        return model(inputs_embeds=e, attention_mask=torch.ones(n, e.shape[1], dtype=torch.long)).logits

    expected = IntegratedGradients(from_embeddings).attribute(
        embeds, baselines=torch.zeros_like(embeds), target=2, n_steps=20, method="gausslegendre")
    result = explain_text(model, tokenizer, SENTENCE, "integrated_gradients", target=2, baseline="zeros", n_steps=20)
    assert _rel_err(result.scores, expected.sum(-1)[0].detach().numpy()) <= 1e-4


def test_integrated_gradients_chunking_changes_nothing_and_completes(english):
    model, tokenizer = english
    one_chunk = explain_text(model, tokenizer, SENTENCE, "integrated_gradients", memory_mb=1e9)
    step_by_step = explain_text(model, tokenizer, SENTENCE, "integrated_gradients", memory_mb=1e-6)
    np.testing.assert_allclose(one_chunk.scores, step_by_step.scores, rtol=1e-5, atol=1e-6)
    # completeness: attributions add up to s(x) - s(baseline) up to the reported delta
    assert abs(one_chunk.extras["delta"]) < 1e-2 * np.abs(one_chunk.scores).sum()


def test_integrated_gradients_reports_progress_without_changing_the_scores(english):
    model, tokenizer = english
    seen: list[tuple[int, int]] = []
    tracked = explain_text(model, tokenizer, SENTENCE, "integrated_gradients", n_steps=6, memory_mb=1e-6,
                           progress=lambda done, total: seen.append((done, total)))
    plain = explain_text(model, tokenizer, SENTENCE, "integrated_gradients", n_steps=6, memory_mb=1e-6)
    assert seen == [(i, 6) for i in range(1, 7)]
    np.testing.assert_array_equal(tracked.scores, plain.scores)
    assert "progress" not in tracked.options
    with pytest.raises(ExplainerError, match="progress must be None or a callable"):
        explain_text(model, tokenizer, SENTENCE, "integrated_gradients", progress=3)


@pytest.mark.parametrize("method, multiply", [("saliency", False), ("grad_x_input", True)])
def test_gradient_methods_match_captum(english, method, multiply):
    model, tokenizer = english
    ids = _ids(tokenizer, SENTENCE)
    layer = LayerGradientXActivation(_forward(model), model.bert.embeddings.word_embeddings,
                                     multiply_by_inputs=multiply)
    per_dim = layer.attribute(ids, target=0)[0].detach()
    expected = per_dim.sum(-1) if multiply else per_dim.norm(dim=-1)
    result = explain_text(model, tokenizer, SENTENCE, method, target=0)
    assert _rel_err(result.scores, expected.numpy()) <= 1e-5


@pytest.mark.parametrize("include_embeddings, signed", [(False, False), (True, False), (True, True)])
def test_layer_grad_cam_equals_per_layer_reference(english, include_embeddings, signed):
    model, tokenizer = english
    ids = _ids(tokenizer, SENTENCE)
    layers = ([model.bert.embeddings] if include_embeddings else []) + list(model.bert.encoder.layer)
    rows = []
    for layer in layers:  # captum's hooks, one layer at a time
        (grad,), (act,) = compute_layer_gradients_and_eval(_forward(model), layer, ids, target_ind=1)
        row = act[0].detach() @ grad[0].mean(dim=0)
        rows.append(row if signed else row.clamp_min(0))
    expected = torch.stack(rows).numpy()
    result = explain_text(model, tokenizer, SENTENCE, "layer_grad_cam", target=1,
                          include_embeddings=include_embeddings, signed=signed)
    assert result.scores.shape == (len(layers), len(result.tokens))
    assert result.layers[-1] == "bert.encoder.layer.2"
    assert _rel_err(result.scores, expected) <= 1e-5
    assert result.word_scores.shape == (len(layers), len(result.words))
    if signed:
        assert (result.scores < 0).any()


def test_layer_grad_cam_uses_one_forward_and_one_backward(english, monkeypatch):
    model, tokenizer = english
    prepared = prepare_text(model, tokenizer, SENTENCE)
    forwards, grads = [], []
    real_grad = torch.autograd.grad

    def counting_grad(outputs, inputs, *args, **kwargs):
        grads.append(len(inputs))
        return real_grad(outputs, inputs, *args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    handle = model.register_forward_pre_hook(lambda *_: forwards.append(1))
    try:
        explain_text(model, tokenizer, prepared, "layer_grad_cam", include_embeddings=True)
        assert len(forwards) == 1 and grads == [4]
        # From raw text: still one forward in all, which is also the prediction (target None = its top class).
        forwards.clear()
        raw = explain_text(model, tokenizer, SENTENCE, "layer_grad_cam", include_embeddings=True)
        assert len(forwards) == 1
    finally:
        handle.remove()
    assert raw.target == int(prepared.logits.argmax())
    np.testing.assert_allclose(raw.scores, explain_text(model, tokenizer, prepared, "layer_grad_cam",
                                                        include_embeddings=True).scores, rtol=1e-5, atol=1e-7)


def _toy_encoder(tokenizer) -> nn.Module:
    """Embeddings (D=2) -> linear layer -> linear + ReLU layer -> mean over tokens -> linear head."""

    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = SimpleNamespace(num_hidden_layers=2)
            self.embeddings = nn.Embedding(len(tokenizer), 2)
            self.layers = nn.ModuleList([nn.Linear(2, 2, bias=False),
                                         nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU())])
            self.head = nn.Linear(2, 2, bias=False)

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            h = self.embeddings(input_ids)
            for layer in self.layers:
                h = layer(h)
            return self.head(h.mean(dim=1))

    toy = Toy()
    with torch.no_grad():
        toy.embeddings.weight.zero_()
        for token, vector in {"[CLS]": (1, 0), "good": (2, 1), "bad": (0, -1), "[SEP]": (1, 1)}.items():
            toy.embeddings.weight[tokenizer.convert_tokens_to_ids(token)] = torch.tensor(vector, dtype=torch.float)
        toy.layers[0].weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
        toy.layers[1][0].weight.copy_(torch.tensor([[1.0, 0.0], [1.0, -1.0]]))
        toy.head.weight.copy_(torch.tensor([[0.0, 0.0], [3.0, -1.0]]))
    return toy.eval()


@pytest.mark.parametrize("signed", [False, True])
def test_layer_grad_cam_known_values(english, signed):
    """Worked by hand. Tokens [CLS] good bad [SEP], E = (1,0) (2,1) (0,-1) (1,1), T = 4, v = (3,-1).
    H1 = W1 E = (1,0) (3,1) (-1,-1) (2,1); H2 = ReLU(W2 H1) = (1,1) (3,2) (0,0) (2,1).
    dH2 = v/4 everywhere -> w2 = (.75,-.25) -> H2.w2 = .5 1.75 0 1.25.
    dH1 = W2^T (v/4 * [W2 H1 > 0]) = (.5,.25) except for "bad" (0,0) -> w1 = (.375,.1875)
        -> H1.w1 = .375 1.3125 -.5625 .9375.
    dE = W1^T dH1 = (.5,.75) except "bad" -> w0 = (.375,.5625) -> E.w0 = .375 1.3125 -.5625 .9375."""
    _, tokenizer = english
    result = explain_text(_toy_encoder(tokenizer), tokenizer, "good bad", "layer_grad_cam", target=1,
                          max_length=16, include_embeddings=True, signed=signed)
    bad = -0.5625 if signed else 0.0
    expected = [[0.375, 1.3125, bad, 0.9375], [0.375, 1.3125, bad, 0.9375], [0.5, 1.75, 0.0, 1.25]]
    np.testing.assert_allclose(result.scores, expected, atol=1e-6)
    assert result.layers == ["embeddings", "layers.0", "layers.1"]
    np.testing.assert_allclose(result.word_scores[2], [1.75, 0.0], atol=1e-6)


def test_attention_rollout_matches_numpy_reference(english):
    model, tokenizer = english
    ids = _ids(tokenizer, SENTENCE)
    with torch.no_grad():
        attentions = model(input_ids=ids, output_attentions=True).attentions
    joint = np.eye(ids.shape[1])
    for a in attentions:
        mixed = a[0].numpy().astype(np.float64).mean(axis=0) + np.eye(ids.shape[1])
        joint = (mixed / mixed.sum(axis=1, keepdims=True)) @ joint
    result = explain_text(model, tokenizer, SENTENCE, "attention_rollout")
    np.testing.assert_allclose(result.scores, joint[0], rtol=1e-5)
    np.testing.assert_allclose(result.scores.sum(), 1.0, rtol=1e-5)  # rows of the rollout stay stochastic
    np.testing.assert_allclose(rollout([torch.eye(3)[None]]), torch.eye(3))


def test_attention_rollout_refuses_sdpa_with_a_clear_message(english):
    _, tokenizer = english
    sdpa = _tiny_bert(len(tokenizer), attn="sdpa")
    with pytest.raises(ExplainerError, match="eager"):
        explain_text(sdpa, tokenizer, SENTENCE, "attention_rollout")


# --- text CNN Grad-CAM ------------------------------------------------------------------------

def _toy_cnn(tokenizer) -> TextCNN:
    """1-d embeddings, one channel per width (1 and 3), max pooling, logit_1 = z_1 - z_3."""
    table = torch.zeros(len(tokenizer), 1)
    for token, value in {"good": 2.0, "bad": -0.5, "[SEP]": 1.0}.items():
        table[tokenizer.convert_tokens_to_ids(token)] = value
    cnn = TextCNN(table, kernel_sizes=(1, 3), channels=1, num_labels=2)
    with torch.no_grad():
        cnn.convs[0][0].weight.fill_(1.0)
        cnn.convs[1][0].weight.fill_(1.0)
        cnn.convs[0][0].bias.zero_()
        cnn.convs[1][0].bias.zero_()
        cnn.head.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, -1.0]]))
        cnn.head.bias.zero_()
    return cnn.eval()


@pytest.mark.parametrize("signed", [False, True])
def test_text_cnn_grad_cam_known_values(english, signed):
    """Worked by hand. Tokens [CLS] good bad [SEP], e = 0 2 -.5 1.
    Width 1: h = ReLU(e) = 0 2 0 1; max at "good", d logit/dh = 1 there -> w = 1/4 -> .25 h = 0 .5 0 .25.
    Width 3 ("same" zero padding): h = 2 1.5 2.5 .5; max at "bad", d logit/dh = -1 -> w = -1/4
        -> -.25 h = -.5 -.375 -.625 -.125 (all cut by the ReLU unless signed).
    grad_cam = the sum over widths."""
    _, tokenizer = english
    cnn = _toy_cnn(tokenizer)
    assert text_methods(cnn) == tuple(m for m in TEXT_METHODS if m != "attention_rollout")
    rows = explain_text(cnn, tokenizer, "good bad", "layer_grad_cam", target=1, max_length=16, signed=signed)
    width3 = [-0.5, -0.375, -0.625, -0.125] if signed else [0.0] * 4
    np.testing.assert_allclose(rows.scores, [[0.0, 0.5, 0.0, 0.25], width3], atol=1e-6)
    assert rows.layers == ["convs.0", "convs.1"]
    combined = explain_text(cnn, tokenizer, "good bad", "grad_cam", target=1, max_length=16, signed=signed)
    np.testing.assert_allclose(combined.scores, np.sum(rows.scores, axis=0), atol=1e-6)


def test_text_cnn_integrated_gradients_matches_captum(english):
    _, tokenizer = english
    torch.manual_seed(0)
    cnn = TextCNN(torch.randn(len(tokenizer), 8), kernel_sizes=(1, 3), channels=4).eval()
    result = explain_text(cnn, tokenizer, SENTENCE, "integrated_gradients", tolerance=0, target=1, max_length=32)
    ids = _ids(tokenizer, SENTENCE)
    base = ids.clone()
    base[0, 1:-1] = tokenizer.pad_token_id
    lig = LayerIntegratedGradients(lambda i: cnn(i), cnn.embed)
    expected = lig.attribute(ids, baselines=base, target=1, n_steps=50, method="gausslegendre").sum(-1)[0]
    assert _rel_err(result.scores, expected.detach().numpy()) <= 1e-4
    assert abs(result.extras["delta"]) < 1e-2 * np.abs(result.scores).sum()
    with pytest.raises(ExplainerError, match="Attention rollout does not apply"):
        explain_text(cnn, tokenizer, SENTENCE, "attention_rollout", max_length=32)


def test_grad_cam_on_a_transformer_points_to_layer_grad_cam(english):
    model, tokenizer = english
    with pytest.raises(ExplainerError, match="layer_grad_cam"):
        explain_text(model, tokenizer, SENTENCE, "grad_cam")


# --- Japanese, batches, shared preparation ----------------------------------------------------

def test_japanese_text_on_a_character_vocabulary(japanese):
    model, tokenizer = japanese
    result = explain_text(model, tokenizer, JAPANESE_TEXT, "integrated_gradients", tolerance=0, target=0)
    # BERT splits off every kanji; a kana run becomes a character then ## characters
    assert result.tokens == ["[CLS]", "こ", "##の", "映", "画", "は", "本", "当", "に", "素", "晴",
                             "ら", "##し", "##い", "。", "[SEP]"]
    assert result.words == ["この", "映", "画", "は", "本", "当", "に", "素", "晴", "らしい", "。"]
    ids = _ids(tokenizer, JAPANESE_TEXT)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[0, [0, -1]] = True
    base = torch.where(special, ids, torch.full_like(ids, tokenizer.pad_token_id))
    lig = LayerIntegratedGradients(_forward(model), model.bert.embeddings.word_embeddings)
    expected = lig.attribute(ids, baselines=base, target=0, n_steps=50, method="gausslegendre").sum(-1)[0]
    assert _rel_err(result.scores, expected.detach().numpy()) <= 1e-4
    rows = explain_text(model, tokenizer, JAPANESE_TEXT, "layer_grad_cam")
    assert rows.scores.shape == (3, 16) and np.isfinite(rows.scores).all()


def test_a_list_of_texts_gives_one_result_each(english):
    model, tokenizer = english
    texts = ["the movie was great", "i hate it !"]
    results = explain_text(model, tokenizer, texts, "saliency")
    for text, result in zip(texts, results, strict=True):
        np.testing.assert_allclose(result.scores, explain_text(model, tokenizer, text, "saliency").scores)


def test_many_methods_share_tokenisation_target_forward_and_gradient(english):
    model, tokenizer = english
    forwards = []
    handle = model.register_forward_pre_hook(lambda *_: forwards.append(1))
    try:
        results = explain_text_many(model, tokenizer, SENTENCE, ["saliency", "grad_x_input"])
    finally:
        handle.remove()
    assert len(forwards) == 2  # the target forward and one gradient forward for both methods
    assert results["saliency"].target == results["grad_x_input"].target
    for method, result in results.items():
        np.testing.assert_allclose(result.scores, explain_text(model, tokenizer, SENTENCE, method).scores)


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_is_a_clear_error(english, text):
    model, tokenizer = english
    with pytest.raises(ExplainerError, match="empty"):
        explain_text(model, tokenizer, text, "saliency")


def test_emoji_only_text_works_as_unknown_tokens(english):
    model, tokenizer = english
    result = explain_text(model, tokenizer, "😀 🎬", "integrated_gradients")
    assert result.tokens == ["[CLS]", "[UNK]", "[UNK]", "[SEP]"]
    assert np.isfinite(result.scores).all()


def test_long_text_is_truncated_with_a_flag(english):
    model, tokenizer = english
    result = explain_text(model, tokenizer, " ".join(["good"] * 5000), "layer_grad_cam")
    assert result.extras["truncated"] is True and result.extras["n_tokens"] == 5002
    assert len(result.tokens) == 64 and result.tokens[-1] == "[SEP]"
    assert explain_text(model, tokenizer, SENTENCE, "saliency").extras["truncated"] is False


@pytest.mark.parametrize("method, options, match", [
    ("no_such_method", {}, "Unknown method"),
    ("saliency", {"steps": 3}, "Unknown option.*steps for saliency"),
    ("integrated_gradients", {"baseline": "noise"}, "baseline"),
    ("saliency", {"target": 7}, "out of range"),
    ("saliency", {"score": "loss"}, "score"),
])
def test_bad_options_are_clear_errors(english, method, options, match):
    model, tokenizer = english
    with pytest.raises(ExplainerError, match=match):
        explain_text(model, tokenizer, SENTENCE, method, **options)


# --- hygiene ----------------------------------------------------------------------------------

def _warm_transformers_hooks(model, tokenizer):
    """transformers 5 installs its own output-recording hooks at the first output_attentions call."""
    with torch.no_grad():
        model(input_ids=_ids(tokenizer, "good"), output_attentions=True, output_hidden_states=True)


@pytest.mark.parametrize("method", [m for m in TEXT_METHODS if m != "grad_cam"])
def test_state_and_hooks_restored_and_train_mode_ignored(english, method):
    model, tokenizer = english
    _warm_transformers_hooks(model, tokenizer)
    seeded = {"seed": 0} if "seed" in explainers.method(method).text_options else {}  # sampling methods
    expected = explain_text(model, tokenizer, SENTENCE, method, target=1, **seeded).scores
    hooks = _hook_count(model)
    model.train()
    model.bert.pooler.dense.weight.requires_grad_(False)
    try:
        with torch.no_grad():
            result = explain_text(model, tokenizer, SENTENCE, method, target=1, **seeded)
            assert not torch.is_grad_enabled()  # the caller's no_grad is back
        assert all(m.training for m in model.modules())
        flags = {n: p.requires_grad for n, p in model.named_parameters()}
        assert flags.pop("bert.pooler.dense.weight") is False and all(flags.values())
        assert _hook_count(model) == hooks
        np.testing.assert_allclose(result.scores, expected, rtol=1e-6)  # dropout was off
    finally:
        model.eval()
        model.bert.pooler.dense.weight.requires_grad_(True)


@pytest.mark.parametrize("method", [m for m in TEXT_METHODS if m != "grad_cam"])
def test_state_and_hooks_restored_after_a_failure_inside_forward(english, method):
    model, tokenizer = english
    _warm_transformers_hooks(model, tokenizer)
    prepared = prepare_text(model, tokenizer, SENTENCE)
    hooks = _hook_count(model)

    def explode(*_):
        raise RuntimeError("boom inside forward")

    handle = model.bert.encoder.layer[1].register_forward_hook(explode)
    model.train()
    grad_mode = torch.is_grad_enabled()
    try:
        with pytest.raises(RuntimeError, match="boom"):
            explain_text(model, tokenizer, prepared, method)
    finally:
        handle.remove()
    assert _hook_count(model) == hooks
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    assert torch.is_grad_enabled() == grad_mode
    model.eval()


def test_text_cnn_hygiene_after_failure(english):
    _, tokenizer = english
    cnn = _toy_cnn(tokenizer)
    prepared = prepare_text(cnn, tokenizer, "good bad", max_length=16)
    handle = cnn.head.register_forward_hook(lambda *_: (_ for _ in ()).throw(RuntimeError("boom")))
    try:
        for method in ("grad_cam", "integrated_gradients"):
            with pytest.raises(RuntimeError, match="boom"):
                explain_text(cnn, tokenizer, prepared, method)
    finally:
        handle.remove()
    assert _hook_count(cnn) == 0 and not cnn.training
    assert [p.requires_grad for p in cnn.parameters()] == [False] + [True] * 6


# --- the bundled sentiment models -------------------------------------------------------------

REVIEW = "A gorgeous, witty and moving film, though the ending drags."


def _bundled(name: str):
    from models.text import load_text_model

    try:
        return load_text_model(name)
    except ExplainerError as err:  # the artifact is produced by a training script
        pytest.skip(f"{name} is not built yet: {err}")


@pytest.fixture(scope="module")
def minilm():
    return _bundled("minilm-sentiment")


@pytest.fixture(scope="module")
def textcnn():
    return _bundled("textcnn-sentiment")


@pytest.mark.slow
def test_bundled_bert_ig_and_layer_grad_cam_match_references(minilm):
    model, tokenizer = minilm.net, minilm.tokenizer
    ids = _ids(tokenizer, REVIEW)
    base = ids.clone()
    base[0, 1:-1] = tokenizer.pad_token_id
    result = explain_text(model, tokenizer, REVIEW, "integrated_gradients", tolerance=0, max_length=minilm.max_length)
    lig = LayerIntegratedGradients(_forward(model), model.bert.embeddings.word_embeddings)
    expected = lig.attribute(ids, baselines=base, target=result.target, n_steps=50, method="gausslegendre")
    assert _rel_err(result.scores, expected.sum(-1)[0].detach().numpy()) <= 1e-4
    rows = explain_text(model, tokenizer, REVIEW, "layer_grad_cam", target=result.target)
    for layer, row in zip(model.bert.encoder.layer, rows.scores, strict=True):
        (grad,), (act,) = compute_layer_gradients_and_eval(_forward(model), layer, ids, target_ind=result.target)
        np.testing.assert_allclose(row, (act[0] @ grad[0].mean(dim=0)).clamp_min(0).detach().numpy(),
                                   rtol=1e-4, atol=1e-5 * np.abs(row).max())
    assert "film" in rows.words and rows.extras["truncated"] is False


@pytest.mark.slow
def test_bundled_text_cnn_grad_cam_and_ig_match_references(textcnn):
    model, tokenizer = textcnn.net, textcnn.tokenizer
    ids = _ids(tokenizer, REVIEW)
    result = explain_text(model, tokenizer, REVIEW, "grad_cam", max_length=textcnn.max_length)
    expected = 0
    for i in range(len(model.convs)):
        (grad,), (act,) = compute_layer_gradients_and_eval(lambda x: model(x), model.convs[i], ids,
                                                           target_ind=result.target)
        expected = expected + (grad[0].mean(dim=1) @ act[0]).clamp_min(0)
    assert _rel_err(result.scores, expected.detach().numpy()) <= 1e-5
    base = ids.clone()
    base[0, 1:-1] = tokenizer.pad_token_id
    ig = explain_text(model, tokenizer, REVIEW, "integrated_gradients", tolerance=0, max_length=textcnn.max_length)
    lig = LayerIntegratedGradients(lambda x: model(x), model.embed)
    reference = lig.attribute(ids, baselines=base, target=ig.target, n_steps=50, method="gausslegendre")
    assert _rel_err(ig.scores, reference.sum(-1)[0].detach().numpy()) <= 1e-4


def test_text_ig_uses_the_image_convention_and_adaptive_panels(english):
    """Text IG takes the images' option names and path integral: adaptive panels by default
    (|delta| <= 1% of the score gap), every quadrature rule, and the old spellings with a warning."""
    model, tokenizer = english
    adaptive = explain_text(model, tokenizer, SENTENCE, "integrated_gradients", target=1)
    gap = abs(adaptive.extras["delta"] - float(np.sum(adaptive.scores)))  # = |s(x) - s(x')|
    assert abs(adaptive.extras["delta"]) <= 0.01 * gap + 1e-9
    assert adaptive.extras["steps"] >= 9 and adaptive.options["tolerance"] == 0.01
    fixed = explain_text(model, tokenizer, SENTENCE, "integrated_gradients", target=1, tolerance=0, steps=20,
                         rule="riemann_trapezoid")
    assert fixed.extras["steps"] == 20 and fixed.options["rule"] == "riemann_trapezoid"
    with pytest.warns(DeprecationWarning, match="n_steps"):
        old = explain_text(model, tokenizer, SENTENCE, "integrated_gradients", target=1, n_steps=20,
                           baseline="zeros")
    new = explain_text(model, tokenizer, SENTENCE, "integrated_gradients", target=1, steps=20, tolerance=0,
                       baseline="zero")
    np.testing.assert_array_equal(old.scores, new.scores)
