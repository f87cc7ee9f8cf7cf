"""Perturbation methods and controls on images: occlusion = captum's Occlusion, RISE = a plain reference
loop (the paper's mask recipe with scikit-image) and finds a known region, LIME = the ``lime`` package's
seeded run (same superpixels, samples, kernel and Ridge), Sobel = scikit-image; bad input, cost, hygiene."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Occlusion
from lime.lime_image import LimeImageExplainer
from skimage.filters import sobel as skimage_sobel
from skimage.transform import resize

import explainers
from explainers.catalog.lime import superpixels
from explainers.catalog.rise import cell_size, mask_draws
from explainers.engine import noise_generator
from explainers.gradients import gaussian_blur

PERTURBATION = ("occlusion", "rise", "lime")


def tiny_net() -> torch.nn.Module:
    """A float64 conv net with moved BatchNorm statistics (not scale-linear, outputs far from constant)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
        torch.nn.Conv2d(6, 8, 3, padding=1, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(32, 5),
    ).double()
    net[1].running_mean.uniform_(-0.5, 0.5)
    net[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


def blocks(height: int = 32, width: int = 40, items: int = 2) -> torch.Tensor:
    """Images of coloured rectangles plus a little noise: SLIC finds several superpixels in them."""
    torch.manual_seed(1)
    x = torch.zeros(items, 3, height, width, dtype=torch.float64)
    for i in range(items):
        for _ in range(6):
            top, left = torch.randint(0, height - 8, (2,)).tolist()
            x[i, :, top : top + 10, left : left + 12] = torch.rand(3, 1, 1, dtype=torch.float64) * 2 - 1
    return x + 0.02 * torch.randn_like(x)


@pytest.mark.parametrize(("window", "stride", "fill"), [(5, 3, "zero"), ((4, 6), (2, 3), "blur"), (8, 8, "zero")])
def test_occlusion_equals_captum(window, stride, fill) -> None:
    net, x = tiny_net(), blocks(20, 23)
    ours = explainers.explain(net, x, "occlusion", [1, 3], window=window, stride=stride, baseline=fill, blur_sigma=2.0)
    wh, ww = window if isinstance(window, tuple) else (window, window)
    sh, sw = stride if isinstance(stride, tuple) else (stride, stride)
    baselines = gaussian_blur(x, 2.0) if fill == "blur" else 0
    theirs = Occlusion(net).attribute(x, sliding_window_shapes=(3, wh, ww), strides=(3, sh, sw),
                                      target=[1, 3], baselines=baselines)
    assert theirs.abs().max() > 1e-4, "a non-degenerate reference"
    assert torch.allclose(theirs[:, 0], theirs[:, 2])  # the window spans every channel
    # captum keeps its sums in float32 (its window tensor is float32): compare to that precision
    torch.testing.assert_close(ours.maps, theirs[:, 0].double(), rtol=1e-5, atol=1e-6 * float(theirs.abs().max()))
    assert ours.targets == [1, 3] and explainers.method("occlusion").forwards(x.shape, {"window": window, "stride": stride}) \
        == x.shape[0] * ours.extras["forwards"]


def rise_reference(net, x, target, samples, cells, keep, seed) -> torch.Tensor:
    """RISE one mask and one forward at a time, each mask built as the paper's code does (scikit-image
    ``resize(order=1, mode="reflect")`` of the grid to (cells + 1) C, then a crop at the shift), from the
    same random draws; softmax probability of ``target``."""
    height, width = x.shape[2:]
    ch, cw = cell_size(height, width, cells)
    generator = noise_generator(seed, x.device)
    out = []
    for item in range(x.shape[0]):
        grids, shifts = mask_draws(samples, cells, keep, generator, x.device)
        total = np.zeros((height, width))
        for grid, (fy, fx) in zip(grids.numpy(), shifts.tolist()):
            up = resize(grid, ((cells + 1) * ch, (cells + 1) * cw), order=1, mode="reflect", anti_aliasing=False)
            dy, dx = int(fy * ch), int(fx * cw)
            mask = up[dy : dy + height, dx : dx + width]
            with torch.no_grad():
                probs = net(x[item : item + 1] * torch.from_numpy(mask)).softmax(-1)
            total += float(probs[0, target[item]]) * mask
        out.append(torch.from_numpy(total / samples / keep))
    return torch.stack(out)


def test_rise_equals_a_plain_reference_loop() -> None:
    net, x = tiny_net(), blocks(21, 26)
    ours = explainers.explain(net, x, "rise", [2, 0], samples=64, cells=4, keep=0.4, seed=3, batch_size=7)
    theirs = rise_reference(net, x, [2, 0], 64, 4, 0.4, 3)
    torch.testing.assert_close(ours.maps, theirs, rtol=1e-7, atol=1e-10)
    again = explainers.explain(net, x, "rise", [2, 0], samples=64, cells=4, keep=0.4, seed=3)  # chunks by memory
    torch.testing.assert_close(again.maps, ours.maps, rtol=1e-10, atol=0)
    assert ours.extras["seed"] == 3 and not ours.record.signed


class RegionScore(torch.nn.Module):
    """Logit 0 = the mean of channel 0 over ``region`` (rows, cols slices); logit 1 = 0: the true attribution is the region."""

    def __init__(self, region: tuple[slice, slice]) -> None:
        super().__init__()
        self.region = region
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = self.scale * x[:, 0, self.region[0], self.region[1]].mean(dim=(1, 2))
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def test_rise_finds_the_region_the_model_reads_and_averages_to_the_constant() -> None:
    region = (slice(4, 16), slice(20, 36))
    net = RegionScore(region).double()
    x = torch.ones(1, 3, 40, 40, dtype=torch.float64)
    found = explainers.explain(net, x, "rise", 0, samples=3000, cells=5, seed=0, score="logit").maps[0]
    inside = torch.zeros(40, 40, dtype=torch.bool)
    inside[region] = True
    top = found.flatten().topk(int(inside.sum())).indices
    overlap = float(inside.flatten()[top].float().mean())
    assert overlap >= 0.8, f"RISE's brightest pixels cover the region the model reads ({overlap:.0%})"
    # Far from the region M(p) is independent of the score, so S(p) = E[s] = keep * 1 (the masks' mean);
    # inside, the map rises above that floor by many times the floor's own spread.
    far = torch.ones(40, 40, dtype=torch.bool)
    far[:24, 12:] = False
    assert abs(float(found[far].mean()) - 0.5) < 0.02
    assert float(found[inside].mean()) - float(found[far].mean()) > 5 * float(found[far].std())
    # A constant score c: E[c M(p)] / keep = c (the masks' mean is keep), up to sampling noise (~1/sqrt(N)).
    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4800, 2)).double()
    c = float(flat(x * 0).softmax(-1)[0, 0])
    constant = explainers.explain(flat, x * 0, "rise", 0, samples=3000, cells=5, seed=0, score="probability")
    assert abs(float(constant.maps.mean()) / c - 1.0) < 0.02 and float(constant.maps.std()) / c < 0.1


def test_lime_equals_the_lime_package() -> None:
    net, x = tiny_net(), blocks(items=1)
    target, samples, seed = 2, 300, 7
    ours = explainers.explain(net, x, "lime", target, samples=samples, seed=seed, segments=12)
    segments = superpixels(x[0], {"superpixels": "slic", "segments": 12, "seed": seed})
    assert segments.max() >= 4, "several superpixels"

    def classify(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(images).permute(0, 3, 1, 2)).softmax(-1).numpy()

    explanation = LimeImageExplainer(random_state=seed).explain_instance(
        x[0].permute(1, 2, 0).numpy(), classify, labels=(target,), top_labels=None, hide_color=0,
        num_samples=samples, batch_size=10, segmentation_fn=lambda image: segments, random_seed=seed)
    weights = dict(explanation.local_exp[target])
    expected = torch.tensor([weights[s] for s in range(segments.max() + 1)], dtype=torch.float64)[torch.from_numpy(segments)]
    assert expected.abs().max() > 1e-4, "a non-degenerate reference"
    torch.testing.assert_close(ours.maps[0], expected, rtol=1e-6, atol=1e-9)
    assert abs(float(ours.extras["r2"][0]) - explanation.score) < 1e-8
    assert abs(float(ours.extras["intercept"][0]) - explanation.intercept[target]) < 1e-8
    assert int(ours.extras["segments"][0]) == segments.max() + 1


def test_lime_recovers_a_linear_model_of_its_superpixels() -> None:
    """A model whose logit is sum_k c_k * (mean of superpixel k): LIME's fit is exact (R^2 = 1, beta = c
    up to the ridge's shrinkage)."""
    x = blocks(items=1)
    segments = torch.from_numpy(superpixels(x[0], {"superpixels": "slic", "segments": 12, "seed": 0}))
    count = int(segments.max()) + 1
    coefficients = torch.linspace(-1, 2, count, dtype=torch.float64)
    onehot = torch.nn.functional.one_hot(segments, count).double()  # (H, W, K)
    values = (x[0, 0] * onehot.permute(2, 0, 1)).sum(dim=(1, 2)) / onehot.sum(dim=(0, 1))  # superpixel means

    class Linear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, images):
            means = torch.einsum("bhw,hwk->bk", images[:, 0], onehot) / onehot.sum(dim=(0, 1))
            return torch.stack([self.w * means @ coefficients, torch.zeros(len(images), dtype=images.dtype)], 1)

    found = explainers.explain(Linear().double(), x, "lime", 0, samples=2000, seed=0, segments=12, score="logit")
    beta = torch.stack([found.maps[0][segments == k][0] for k in range(count)])
    torch.testing.assert_close(beta, coefficients * values, rtol=0.02, atol=0.01)
    assert float(found.extras["r2"][0]) > 0.999


def test_controls_are_model_free() -> None:
    net, x = tiny_net(), blocks()
    edges = explainers.explain(net, x, "sobel")
    gray = x.mean(dim=1).numpy()
    for i in range(x.shape[0]):
        np.testing.assert_allclose(edges.maps[i].numpy(), skimage_sobel(gray[i]), rtol=1e-10, atol=1e-12)
    first = explainers.explain(net, x, "random", 0, seed=5)
    other_model = explainers.explain(tiny_net().train(), x * 3, "random", 4, seed=5)
    torch.testing.assert_close(first.maps, other_model.maps)
    assert 0 <= float(first.maps.min()) and float(first.maps.max()) < 1 and float(first.maps.std()) > 0.05
    fresh = explainers.explain(net, x, "random")
    assert fresh.extras["seed"] != 5 and not torch.equal(fresh.maps, first.maps)
    for name in ("random", "sobel"):
        record = explainers.method(name)
        assert record.family == "control" and record.model_agnostic and record.target_independent
        assert record.forwards(x.shape) == 0


def test_records_flags_and_cost() -> None:
    for name in PERTURBATION:
        record = explainers.method(name)
        assert record.family == "perturbation" and record.model_agnostic and not record.needs_gradients and record.slow
        assert {"seed", "memory_mb", "progress"} <= set(record.options)
    assert explainers.method("occlusion").signed and explainers.method("lime").signed and not explainers.method("rise").signed
    assert explainers.method("occlusion").forwards((1, 3, 224, 224)) == 27 * 27  # window 16, stride 8
    assert explainers.method("rise").forwards((2, 3, 224, 224), {"samples": 100}) == 200
    assert explainers.method("lime").forwards((1, 3, 224, 224)) == 1000
    assert explainers.method("saliency").forwards((1, 3, 224, 224)) is None


@pytest.mark.parametrize("name", PERTURBATION)
def test_progress_counts_every_forward_of_the_batch(name) -> None:
    net, x = tiny_net(), blocks()
    seen = []
    options = {"occlusion": {"window": 8, "stride": 8}, "rise": {"samples": 30}, "lime": {"samples": 30}}[name]
    explainers.explain(net, x, name, 0, batch_size=8, progress=lambda done, total: seen.append((done, total)), **options)
    total = explainers.method(name).forwards(x.shape, options)
    assert seen[-1] == (total, total) and [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) > 2


@pytest.mark.parametrize(("name", "options", "message"), [
    ("occlusion", {"window": 50}, r"window \(50x50 pixels\) is larger than the image \(32x40\)"),
    ("occlusion", {"stride": 0}, "stride must be a whole number of pixels >= 1"),
    ("occlusion", {"window": 4, "stride": 6}, "stride .* is larger than the window"),
    ("rise", {"samples": 0}, "samples must be a whole number from 1"),
    ("rise", {"keep": 0}, "keep must be a finite number > 0"),
    ("lime", {"samples": 0}, "samples must be a whole number from 1"),
    ("lime", {"samples": 1}, "at least 2 samples"),
    ("random", {"cells": 0}, "cells must be a whole number from 1"),
])
def test_bad_options_get_clear_messages(name, options, message) -> None:
    with pytest.raises(explainers.ExplainerError, match=message):
        explainers.explain(tiny_net(), blocks(), name, 0, **options)


class FailsLater(torch.nn.Module):
    """A model that raises on its ``fail_at``-th call."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.net, self.calls, self.fail_at = tiny_net(), 0, fail_at

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("boom")
        return self.net(x)


@pytest.mark.parametrize("name", [*PERTURBATION, "random", "sobel"])
@pytest.mark.parametrize("fail_at", [None, 3])
def test_hooks_removed_and_state_restored(name, fail_at) -> None:
    model = FailsLater(fail_at or 10**9).train()
    flags = [p.requires_grad for p in model.parameters()]
    options = {"occlusion": {"window": 8}, "rise": {"samples": 20}, "lime": {"samples": 20}}.get(name)
    options = {**options, "batch_size": 4} if options else {}
    if fail_at is None or not options:  # the controls make one forward (the target's)
        explainers.explain(model, blocks(), name, 0, **options)
    else:
        with pytest.raises(RuntimeError, match="boom"):
            explainers.explain(model, blocks(), name, 0, **options)
    assert all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags and torch.is_grad_enabled()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
