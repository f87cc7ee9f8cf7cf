"""Shared work: one forward for the CAM family over many targets; chunking that changes speed only."""

from __future__ import annotations

import torch
import torchvision

import explainers
from explainers.folded import gradient_net
from tests.test_explainers_support import relative_error, sample_batch

SHAPE = (2, 3, 64, 80)


class ForwardCounter:
    """Counts forwards of ``model`` and of the folded copy that SmoothGrad and IG run on."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls = 0
        self.handles = [net.register_forward_pre_hook(self.count) for net in (model, gradient_net(model))]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def count(self, _module, _inputs) -> None:
        self.calls += 1


def test_cam_family_for_top5_runs_exactly_one_forward() -> None:
    model = torchvision.models.resnet18(num_classes=20).eval()
    x = sample_batch(0, SHAPE)
    counter = ForwardCounter(model)
    shared = explainers.explain_many(model, x, ["cam", "grad_cam", "grad_cam_plus_plus"], layer="layer4", top_k=5)
    assert counter.calls == 1
    counter.remove()
    ranked = model(x).topk(5, dim=1).indices
    for method, results in shared.items():
        assert len(results) == 5
        for k, result in enumerate(results):
            assert result.targets == ranked[:, k].tolist()
            alone = explainers.explain(model, x, method, ranked[:, k].tolist(), "layer4")
            assert torch.allclose(result.raw, alone.raw, rtol=1e-5, atol=1e-7)


def test_automatic_layer_is_probed_once_then_cached() -> None:
    model = torchvision.models.resnet18(num_classes=20).eval()
    x = sample_batch(0, SHAPE)
    counter = ForwardCounter(model)
    first = explainers.explain(model, x, "grad_cam")
    assert first.layer == "layer4" and counter.calls == 2  # one probe of one item, one pass
    explainers.explain(model, x, "grad_cam")
    assert counter.calls == 3


def test_chunking_changes_nothing_but_the_number_of_passes() -> None:
    model = torchvision.models.resnet18(num_classes=20).eval()
    x = sample_batch(0, SHAPE)
    seen: list[tuple[int, int]] = []
    counter = ForwardCounter(model)
    tiny = explainers.explain(model, x, "integrated_gradients", steps=6, tolerance=0, memory_mb=1e-3, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 6) for i in range(1, 7)] and counter.calls == 1 + 6  # prediction + one per step
    big = explainers.explain(model, x, "integrated_gradients", steps=6, tolerance=0, memory_mb=1e5)
    assert counter.calls == 7 + 1 + 2  # first chunk measures with one step, the rest in one chunk
    assert relative_error(tiny.pixel, big.pixel) < 1e-5
    one = explainers.explain(model, x, "smoothgrad", samples=4, seed=7, memory_mb=1e-3)
    all_at_once = explainers.explain(model, x, "smoothgrad", samples=4, seed=7, memory_mb=1e5)
    assert relative_error(one.maps, all_at_once.maps) < 1e-5 and one.extras["seed"] == 7
    other_seed = explainers.explain(model, x, "smoothgrad", samples=4, seed=8)
    assert relative_error(other_seed.maps, one.maps) > 1e-3


def test_noisy_methods_share_one_set_of_noisy_passes() -> None:
    """SmoothGrad, VarGrad and Smooth Grad-CAM++ asked for together (same noise options) run the
    noisy copies once: samples forwards (chunked), plus the CAM pass and no other; the maps equal
    each method run alone with the same seed.

    "Equal" is up to float32 rounding: alone, SmoothGrad and VarGrad run on the folded
    channels_last copy; shared with a CAM on ``layer3`` (a container fx inlines; on layer4, followed only by pooling and
    the head, Smooth Grad-CAM++ would not depend on the noise at all) they run on the
    network itself, and a ReLU input within rounding distance of its kink can flip (measured up to
    1e-2 relative L2 for 1 in 12 random weight draws). The control (another seed) is 10x the tolerance away or more."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = sample_batch(2, (1, 3, 64, 80))
    noisy = {"samples": 6, "noise_level": 0.1, "seed": 4, "memory_mb": 1e-6}  # one copy per chunk: countable
    names = ["smooth_grad_cam_plus_plus", "smoothgrad", "vargrad"]
    counter = ForwardCounter(model)
    together = explainers.explain_many(model, x, names, [3], "layer3", **noisy)
    calls = counter.calls
    counter.remove()
    assert calls == 1 + noisy["samples"]  # the layer pass + one pass per noisy copy
    tolerance = {"smooth_grad_cam_plus_plus": 1e-4, "smoothgrad": 2e-2, "vargrad": 2e-2}  # CAM: one network both ways
    for name in names:
        alone = explainers.explain(model, x, name, 3, "layer3", **noisy)
        assert relative_error(together[name][0].maps, alone.maps) <= tolerance[name], name
        assert together[name][0].extras["seed"] == 4
        other_seed = explainers.explain(model, x, name, 3, "layer3", **{**noisy, "seed": 5})
        assert relative_error(other_seed.maps, alone.maps) > 10 * tolerance[name], name
