"""Text leave-one-out (occlusion) and LIME: known answers on a bag-of-tokens model, the batched (right-padded)
copies = one unpadded forward per copy on every bundled text model, LIME = the ``lime`` package's seeded
LimeTextExplainer on MiniLM; bad input and hygiene."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lime.lime_text import LimeTextExplainer

import explainers
import models
from explainers import perturbation as pert
from explainers.text import prepare_text

SENTENCE = "The unbelievably overdramatic screenplay wastes a charming cast, sadly."


@pytest.fixture(scope="module")
def minilm():
    return models.load_text_model("minilm-sentiment")


class BagOfTokens(torch.nn.Module):
    """logit 0 = sum over attended tokens of w[id] (special tokens weigh 0), logit 1 = 0: each token's true
    leave-one-out score is its weight, and the score is exactly linear in the kept words."""

    def __init__(self, vocab: int, special: list[int]) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.w = torch.nn.Parameter(torch.randn(vocab, generator=generator, dtype=torch.float64))
        with torch.no_grad():
            self.w[special] = 0

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        score = (self.w[input_ids] * mask).sum(dim=1)
        return torch.stack([score, torch.zeros_like(score)], dim=1)


@pytest.fixture(scope="module")
def bag(minilm):
    tok = minilm.tokenizer
    return BagOfTokens(tok.vocab_size, list(tok.all_special_ids)).eval(), tok


@pytest.mark.parametrize("baseline", ["remove", "mask", "pad"])
def test_leave_one_out_gives_each_token_its_weight(bag, baseline) -> None:
    model, tok = bag
    prepared = prepare_text(model, tok, SENTENCE)
    ids = prepared.inputs["input_ids"][0]
    weights = model.w.detach()[ids] * torch.tensor([not s for s in prepared.special])
    tokens = explainers.explain_text(model, tok, prepared, "occlusion", 0, unit="token", baseline=baseline, score="logit")
    np.testing.assert_allclose(tokens.scores, weights.numpy(), atol=1e-12)
    words = explainers.explain_text(model, tok, prepared, "occlusion", 0, unit="word", baseline=baseline, score="logit")
    assert len(words.words) < sum(not s for s in prepared.special), "some words have several pieces"
    np.testing.assert_allclose(words.word_scores, tokens.word_scores, atol=1e-12)  # word = sum of its pieces
    assert words.extras["forwards"] == len(words.words)


def test_lime_recovers_the_bag_of_tokens_weights(bag) -> None:
    model, tok = bag
    found = explainers.explain_text(model, tok, SENTENCE, "lime", 0, samples=1500, seed=0, score="logit")
    exact = explainers.explain_text(model, tok, SENTENCE, "occlusion", 0, score="logit")
    np.testing.assert_allclose(found.word_scores, exact.word_scores, rtol=0.03, atol=0.02)
    assert found.extras["r2"] > 0.999 and found.extras["seed"] == 0


def _one_copy_at_a_time(model, tok, prepared, units, j: int, target: int) -> float:
    """The target logit of the text without unit j, unpadded, in its own forward."""
    ids = prepared.inputs["input_ids"][0].tolist()
    kept = [t for i, t in enumerate(ids) if i not in set(units[j])]
    inputs = {"input_ids": torch.tensor([kept]), "attention_mask": torch.ones(1, len(kept), dtype=torch.long)}
    if "token_type_ids" in prepared.inputs:
        inputs["token_type_ids"] = torch.zeros(1, len(kept), dtype=torch.long)
    with torch.no_grad():
        out = model(**inputs)
    return float(getattr(out, "logits", out)[0, target])


@pytest.mark.parametrize("name", [info.name for info in models.text_models()])
def test_batched_removal_equals_one_unpadded_forward_per_copy(name) -> None:
    """Right-padded copies with an attention mask read as the shorter texts (positions included: XLM-R
    numbers positions from its pad id), on every bundled text model."""
    model = models.load_text_model(name)
    text = {"multilingual-sentiment": "这家酒店的服务很好，但是房间太小了。"}.get(name, SENTENCE)
    prepared = prepare_text(model.net, model.tokenizer, text)
    target = int(prepared.logits.argmax())
    found = explainers.explain_text(model.net, model.tokenizer, prepared, "occlusion", target, score="logit")
    units = pert.text_units(model.tokenizer, prepared, "word")
    clean = float(prepared.logits[0, target])
    expected = [clean - _one_copy_at_a_time(model.net, model.tokenizer, prepared, units, j, target) for j in range(len(units))]
    assert max(abs(e) for e in expected) > 1e-3, "a non-degenerate reference"
    np.testing.assert_allclose(found.word_scores, expected, rtol=1e-4, atol=1e-4)


def test_lime_equals_the_lime_package_on_minilm(minilm) -> None:
    """Distinct lower-case words without punctuation: the package's words (regex \\W+) are the tokenizer's
    words, and removing a word from the string gives the same token ids as removing its pieces."""
    text, seed, samples = "a warm funny film that never loses its nerve", 3, 300
    net, tok = minilm.net, minilm.tokenizer
    target = int(prepare_text(net, tok, text).logits.argmax())

    def classify(strings: list[str]) -> np.ndarray:
        enc = tok(strings, padding=True, return_tensors="pt")
        with torch.no_grad():
            return net(**enc).logits.softmax(-1).double().numpy()

    ours = explainers.explain_text(net, tok, text, "lime", target, samples=samples, seed=seed)
    words = text.split()
    theirs = LimeTextExplainer(random_state=seed, bow=True).explain_instance(
        text, classify, labels=(target,), num_features=len(words), num_samples=samples)
    coefficients = dict(theirs.local_exp[target])
    expected = [coefficients[i] for i in range(len(words))]
    assert ours.words == words and max(abs(e) for e in expected) > 1e-3
    np.testing.assert_allclose(ours.word_scores, expected, rtol=1e-3, atol=1e-5)
    assert abs(ours.extras["r2"] - theirs.score) < 1e-4


@pytest.mark.parametrize("name", ["occlusion", "lime"])
def test_bad_text_input_gets_clear_messages(minilm, name) -> None:
    net, tok = minilm.net, minilm.tokenizer
    with pytest.raises(explainers.ExplainerError, match="The text is empty"):
        explainers.explain_text(net, tok, "   ", name)
    with pytest.raises(explainers.ExplainerError, match="unit must be one of 'word', 'token'"):
        explainers.explain_text(net, tok, "fine", name, unit="sentence")
    with pytest.raises(explainers.ExplainerError, match="baseline must be one of 'remove', 'mask', 'pad'"):
        explainers.explain_text(net, tok, "fine", name, baseline="zero")
    if name == "lime":
        with pytest.raises(explainers.ExplainerError, match="samples must be a whole number from 1"):
            explainers.explain_text(net, tok, "fine", name, samples=0)


class FailsLater(BagOfTokens):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.calls = 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("boom")
        return super().forward(*args, **kwargs)


@pytest.mark.parametrize("name", ["occlusion", "lime"])
def test_text_hygiene_after_success_and_failure(minilm, name) -> None:
    tok = minilm.tokenizer
    model = FailsLater(tok.vocab_size, list(tok.all_special_ids)).train()
    with pytest.raises(RuntimeError, match="boom"):  # call 1: the target forward, 2: the probe, 3: a chunk
        explainers.explain_text(model, tok, SENTENCE, name, batch_size=2)
    explainers.explain_text(model, tok, SENTENCE, name, batch_size=2)  # calls 4 and on succeed
    assert model.training and model.w.requires_grad and torch.is_grad_enabled()
    assert not model._forward_hooks and not model._forward_pre_hooks
    cost = explainers.method(name).forwards((len(tok(SENTENCE)["input_ids"]),), kind="text")
    assert cost == (len(tok(SENTENCE)["input_ids"]) if name == "occlusion" else 200)
