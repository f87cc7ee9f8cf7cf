"""evaluation: rank statistics against scipy, deletion/insertion on models whose right answer is known,
the randomisation check's hygiene, agreement and IG convergence, on tiny models (fast)."""

import copy

import numpy as np
import pytest
import scipy.stats
import torch
import torchvision
from torch import nn

import explainers
from evaluation import agreement, image_ig_convergence, randomisation_cascade, randomisation_groups, score_maps
from evaluation.faithfulness import auc, score_tokens, step_counts, unit_ranks
from evaluation.ranking import average_ranks, spearman, top_k_overlap
from explainers.errors import ExplainerError

# ---- rank statistics ---------------------------------------------------------------------------

def test_average_ranks_and_spearman_match_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 300).astype(float)  # many ties
    b = a + rng.integers(0, 3, 300)
    np.testing.assert_allclose(average_ranks(a), scipy.stats.rankdata(a) - 1)
    assert spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)
    assert spearman(-a, b, absolute=True) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)
    assert np.isnan(spearman(np.ones(10), np.arange(10)))


def test_top_k_overlap_by_hand():
    a = np.array([9, 8, 7, 6, 0, 0, 0, 0, 0, 0], float)
    b = np.array([9, 0, 7, 0, 6, 0, 0, 0, 0, 0], float)
    # top 30%: a -> {0, 1, 2}, b -> {0, 2, 4}; IoU = 2 / 4
    assert top_k_overlap(a, b, 0.3) == 0.5
    assert top_k_overlap(a, a, 0.3) == 1.0
    with pytest.raises(ExplainerError):
        top_k_overlap(a, b[:5])


def test_agreement_matrix_compares_signs_only_when_both_maps_are_signed():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(6, 6))
    result = agreement({"a": m, "minus_a": -m, "other": rng.normal(size=(6, 6))})
    assert result.spearman.shape == (3, 3) and np.allclose(result.spearman, result.spearman.T)
    assert result.spearman[0, 1] == pytest.approx(1.0) and result.top_k_iou[0, 1] == 1.0
    signed = agreement({"a": m, "minus_a": -m, "unsigned": np.abs(m)}, signed={"a", "minus_a"})
    assert signed.spearman[0, 1] == pytest.approx(-1.0) and signed.top_k_iou[0, 1] < 1.0
    assert signed.spearman[0, 2] == pytest.approx(1.0)  # one signed, one not: magnitudes


def test_disagreement_uses_the_records_signs_and_leaves_out_a_negative_map():
    from evaluation.agreement import disagreement

    m = np.random.default_rng(2).normal(size=(6, 6))
    maps = {"integrated_gradients": m, "input_x_gradient": -m, "grad_cam": np.abs(m)}
    # both signed: rho(m, -m) = -1; with Grad-CAM (unsigned): rho(|m|, |m|) = 1 twice -> 1 - 1/3
    assert disagreement(maps) == pytest.approx(2 / 3)
    other, against = np.random.default_rng(3).normal(size=(2, 6, 6))
    more = {**maps, "saliency": other, "grad_cam_negative": against}
    expected = 1 - np.mean([-1, 1, 1, *(spearman(np.abs(v), np.abs(other)) for v in maps.values())])
    assert disagreement(more) == pytest.approx(expected)  # Grad-CAM (negative) left out: its record says so
    assert disagreement({"grad_cam": m}) is None and disagreement({"grad_cam": m, "saliency": np.ones((6, 6))}) is None


# ---- deletion / insertion ----------------------------------------------------------------------

def test_auc_and_steps_by_hand():
    assert auc(np.array([0, 0.5, 1]), np.array([1.0, 0.5, 0.0])) == pytest.approx(0.5)
    assert auc(np.array([0, 0.25, 1]), np.array([1.0, 1.0, 0.0])) == pytest.approx(0.25 + 0.375)
    assert step_counts(64, 20).tolist() == [round(i * 64 / 20) for i in range(21)]
    assert step_counts(3, 20).tolist() == [0, 1, 2, 3]  # k capped at the number of units


def test_ties_are_broken_by_raster_order():
    ranks = unit_ranks(torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.5]]), torch.ones(5, dtype=torch.bool))
    assert ranks.tolist() == [[3, 0, 4, 1, 2]]


class Linear(nn.Module):
    """logit_c = sum_{c', i, j} W[c, c', i, j] x[c', i, j] + b_c: the exact attribution is W * x."""

    def __init__(self, classes=3, size=6, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(classes, 3, size, size, generator=g))
        self.bias = nn.Parameter(torch.randn(classes, generator=g))

    def forward(self, x):
        return torch.einsum("bchw,kchw->bk", x, self.weight) + self.bias


@pytest.fixture
def linear():
    torch.manual_seed(0)
    return Linear(), torch.randn(1, 3, 6, 6)


def test_linear_model_curves_by_hand(linear):
    model, x = linear
    exact = (model.weight[1] * x[0]).sum(0).detach()
    s = score_maps(model, x, {"exact": exact}, target=1, steps=9, replacement="zero", insertion_start="zero",
                   score="logit")["exact"]
    contributions = np.sort(exact.numpy().ravel())[::-1]
    counts = step_counts(36, 9).numpy()
    bias, total = model.bias[1].item(), contributions.sum()
    expected_deletion = [bias + total - contributions[:n].sum() for n in counts]
    expected_insertion = [bias + contributions[:n].sum() for n in counts]
    np.testing.assert_allclose(s.deletion, expected_deletion, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.insertion, expected_insertion, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.fractions, counts / 36)
    assert s.target == 1 and s.score == "logit"


def test_exact_attribution_scores_best_on_a_linear_model(linear):
    model, x = linear
    w = model.weight[2].detach()
    exact = (w * x[0]).sum(0)
    rng = torch.Generator().manual_seed(3)
    rivals = {
        "negated": -exact,
        "magnitude": exact.abs(),
        "gradient": w.abs().amax(0),
        **{f"shuffled{i}": exact.flatten()[torch.randperm(36, generator=rng)].view(6, 6) for i in range(20)},
    }
    for score in ("logit", "probability"):
        found = score_maps(model, x, {"exact": exact, **rivals}, target=2, steps=12, replacement="zero", score=score)
        best = found.pop("exact")
        if score == "logit":  # provably optimal at every step for the logit of a linear model
            assert all(best.deletion_auc <= r.deletion_auc + 1e-9 for r in found.values())
            assert all(best.insertion_auc >= r.insertion_auc - 1e-9 for r in found.values())
        assert best.deletion_auc < best.random_deletion_auc and best.insertion_auc > best.random_insertion_auc
        if score == "logit":  # (class 2's probability is ~0 here: no verdict on the probability)
            assert best.verdicts["deletion"].outcome == best.verdicts["insertion"].outcome == "beats random"
            assert found["negated"].verdicts["deletion"].outcome == "no better than random"
        else:
            assert not best.verdicts["deletion"].given and "probability" in best.verdicts["deletion"].reason


class Counter:
    def __init__(self, model):
        self.batches = []
        self.handle = model.register_forward_hook(lambda _m, inputs, _o: self.batches.append(inputs[0].shape[0]))


def test_all_curves_run_as_few_batched_forwards_and_chunking_changes_nothing(linear):
    model, x = linear
    maps = {"a": torch.randn(6, 6), "b": torch.randn(6, 6)}
    options = dict(target=0, steps=10, random_maps=3)
    reference = score_maps(model, x, maps, **options)  # also runs the (cached) one-row memory probe
    counter = Counter(model)
    again = score_maps(model, x, maps, **options)
    rows = 3 + 2 * (10 - 1) * (2 + 3)
    # two forwards: every image of the maps' curves (the 3 shared images included), then the floor's
    assert counter.batches == [3 + 2 * 9 * 2, 2 * 9 * 3]
    counter.batches.clear()
    reused = score_maps(model, x, maps, floors={None: again["a"].floor}, **options)
    assert counter.batches == [3 + 2 * 9 * 2] and reused["a"].floor is again["a"].floor
    counter.batches.clear()
    small = score_maps(model, x, maps, memory_mb=1e-3, **options)
    assert sum(counter.batches) == rows and len(counter.batches) > 1
    counter.handle.remove()
    for name in maps:
        np.testing.assert_allclose(small[name].deletion, reference[name].deletion, rtol=1e-6)
        np.testing.assert_allclose(again[name].insertion, reference[name].insertion)


def test_insertion_starts_from_a_blurred_copy_and_deletion_ends_at_the_fill(linear):
    model, x = linear
    exact = (model.weight[0] * x[0]).sum(0).detach()
    s = score_maps(model, x, {"m": exact}, target=0, steps=4, blur_sigma=1.0, random_maps=2, grids={"m": (2, 2)})["m"]
    blurred = explainers.gradients.gaussian_blur(x, 1.0)
    with torch.no_grad():
        probability = model(x).softmax(-1)[0, 0].item()
        assert s.insertion[0] == pytest.approx(model(blurred).softmax(-1)[0, 0].item(), rel=1e-5)
        assert s.deletion[-1] == pytest.approx(model(torch.zeros_like(x)).softmax(-1)[0, 0].item(), rel=1e-5)
        assert s.deletion[0] == pytest.approx(probability, rel=1e-5) == s.insertion[-1]
    assert s.probability == pytest.approx(probability, rel=1e-6)
    assert "zero tensor" in s.deletion_substrate and "blurred copy (Gaussian, sigma 1 px)" in s.insertion_substrate
    assert s.floor.grid == (2, 2) and s.floor.count == 2


def test_floor_is_reused_not_recomputed(linear):
    model, x = linear
    maps = {"a": torch.randn(6, 6), "b": torch.randn(6, 6)}
    first = score_maps(model, x, {"a": maps["a"]}, target=0, steps=6, random_maps=5)
    counter = Counter(model)
    second = score_maps(model, x, {"b": maps["b"]}, target=0, steps=6, random_maps=5, floors={None: first["a"].floor})
    assert counter.batches == [3 + 2 * 5]  # only map b's rows: the floor came from the first call
    counter.handle.remove()
    assert second["b"].floor is first["a"].floor
    together = score_maps(model, x, maps, target=0, steps=6, random_maps=5)
    np.testing.assert_allclose(together["b"].deletion_auc, second["b"].deletion_auc)
    np.testing.assert_allclose(together["a"].floor.deletion_auc, first["a"].floor.deletion_auc)
    other = score_maps(model, x, {"b": maps["b"]}, target=0, steps=7, random_maps=5, floors={None: first["a"].floor})
    assert other["b"].floor is not first["a"].floor and len(other["b"].floor.fractions) == 8  # settings differ


def test_refuses_bad_maps_and_options(linear):
    model, x = linear
    with pytest.raises(ExplainerError, match="shape"):
        score_maps(model, x, {"m": torch.zeros(5, 6)})
    with pytest.raises(ExplainerError, match="NaN"):
        score_maps(model, x, {"m": torch.full((6, 6), float("nan"))})
    with pytest.raises(ExplainerError, match="replacement"):
        score_maps(model, x, {"m": torch.zeros(6, 6)}, replacement="paint")
    with pytest.raises(ExplainerError, match="one image"):
        score_maps(model, x.repeat(2, 1, 1, 1), {"m": torch.zeros(6, 6)})


class BagOfWords(nn.Module):
    """logits = (s, -s), s = sum over unmasked tokens of w[id]; w[pad] = 0. Exact token attribution: w[id_t]."""

    def __init__(self, vocab):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.embed = nn.Embedding(vocab, 1)
        with torch.no_grad():
            self.embed.weight.copy_(torch.randn(vocab, 1, generator=g))
            self.embed.weight[0] = 0.0

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        s = (self.embed(input_ids)[..., 0] * attention_mask).sum(1)
        return torch.stack([s, -s], dim=1)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from models.sentiment_data import minilm_dir

    return AutoTokenizer.from_pretrained(minilm_dir())


def test_token_curves_on_a_bag_of_words(tokenizer):
    model = BagOfWords(tokenizer.vocab_size)
    prepared = explainers.prepare_text(model, tokenizer, "a quietly moving and beautifully acted little film")
    ids = prepared.inputs["input_ids"][0]
    special = torch.tensor(prepared.special)
    weights = model.embed.weight[ids, 0].detach()
    exact, kept = weights.masked_fill(special, 0.0), float(weights[special].sum())  # [CLS], [SEP] never replaced
    found = score_tokens(model, tokenizer, prepared, {"exact": exact, "negated": -exact}, target=0, steps=20,
                         score="logit")
    best = found["exact"]
    contributions = np.sort(exact[~special].numpy())[::-1]
    n = len(contributions)
    assert len(best.fractions) == n + 1  # steps capped at the number of ordinary tokens
    np.testing.assert_allclose(best.deletion, [kept + contributions[i:].sum() for i in range(n + 1)], atol=1e-5)
    np.testing.assert_allclose(best.insertion, [kept + contributions[:i].sum() for i in range(n + 1)], atol=1e-5)
    assert best.deletion_auc < found["negated"].deletion_auc
    assert found["negated"].verdicts["deletion"].outcome == "no better than random"
    assert best.verdicts["deletion"].outcome == "beats random"
    with pytest.raises(ExplainerError, match="tokens"):
        score_tokens(model, tokenizer, prepared, {"bad": exact[:-1]})


# ---- randomisation -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10).eval()
    with torch.no_grad():  # trained-looking BatchNorm statistics, so outputs are not near-constant
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return net


def test_groups_from_the_top_down(resnet):
    labels = [g.label for g in randomisation_groups(resnet, torch.randn(1, 3, 32, 32))]
    assert labels == ["fc", "layer4.1", "layer4.0", "layer3.1", "layer3.0", "layer2.1", "layer2.0",
                      "layer1.1", "layer1.0", "conv1 + bn1"]


def test_cascade_leaves_the_model_bit_for_bit_and_changes_the_maps(resnet):
    x = torch.randn(1, 3, 48, 48)
    before = copy.deepcopy(resnet.state_dict())
    flags = {n: p.requires_grad for n, p in resnet.named_parameters()}
    rng = torch.random.get_rng_state()
    cascade = randomisation_cascade(resnet, x, ["grad_cam", "saliency"], layer="layer4", depth=4, seed=1)
    after = resnet.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert {n: p.requires_grad for n, p in resnet.named_parameters()} == flags and not resnet.training
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert cascade.depth_labels == ["fc", "layer4.1", "layer4.0", "layer3.1"]
    for method in ("grad_cam", "saliency"):
        assert len(cascade.maps[method]) == 4 and cascade.maps[method][0].shape == (48, 48)
        assert cascade.correlation[method].shape == (4,)
        # the trained-vs-random maps differ (NaN: the map became flat, e.g. Grad-CAM all zero after its ReLU)
        assert not cascade.correlation[method][-1] >= 0.9
    assert cascade.correlation["saliency"][-1] < 0.9
    original = explainers.explain(resnet, x, "saliency", cascade.target).maps[0].numpy()
    np.testing.assert_allclose(cascade.original["saliency"], original, rtol=1e-5)
    again = randomisation_cascade(resnet, x, ["saliency"], layer="layer4", depth=4, seed=1)
    np.testing.assert_allclose(again.correlation["saliency"], cascade.correlation["saliency"])




# ---- IG convergence ----------------------------------------------------------------------------

def test_ig_convergence_matches_the_explainer_and_shrinks():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    x = torch.randn(1, 3, 8, 8) * 3
    result = image_ig_convergence(model, x, 1, steps=(32, 2, 8))
    assert result.steps == [2, 8, 32]
    for n, delta, relative in zip(result.steps, result.delta, result.relative):
        a = explainers.explain(model, x, "integrated_gradients", 1, steps=n, tolerance=0)
        assert delta == pytest.approx(float(a.extras["delta"][0]), rel=1e-5)
        gap = float(a.extras["score"][0] - a.extras["baseline_score"][0])
        assert relative == pytest.approx(abs(delta) / abs(gap), rel=1e-4)
    assert abs(result.delta[-1]) < abs(result.delta[0])


def test_partial_scores_come_before_the_floor_and_equal_the_final_curves(linear):
    """``partial``: the maps' curves as soon as their rows have run (no floor yet, so no verdicts), the
    same curves as the final result; progress counts every row of both forwards once, in order."""
    model, x = linear
    maps = {"a": torch.randn(6, 6), "b": torch.randn(6, 6)}
    early, counts = [], []
    final = score_maps(model, x, maps, target=0, steps=10, random_maps=3, score="logit", partial=early.append,
                       progress=lambda done, total: counts.append((done, total)))
    assert len(early) == 1 and set(early[0]) == set(maps)
    for name in maps:
        assert early[0][name].floor is None and early[0][name].verdicts == {}
        np.testing.assert_array_equal(early[0][name].deletion, final[name].deletion)
        np.testing.assert_array_equal(early[0][name].insertion, final[name].insertion)
        assert final[name].floor.count == 3 and final[name].verdicts["deletion"].given
    done = [d for d, _ in counts]
    assert done == sorted(done) and counts[-1] == (3 + 2 * 9 * 5, 3 + 2 * 9 * 5)
    given = score_maps(model, x, maps, target=0, steps=10, random_maps=3, score="logit", partial=early.append,
                       floors={None: final["a"].floor})
    assert len(early) == 1 and given["a"].verdicts["deletion"].outcome == final["a"].verdicts["deletion"].outcome
