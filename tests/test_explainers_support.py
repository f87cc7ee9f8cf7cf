"""Shared helpers for the explainer tests: trained-looking torchvision models and state snapshots.

Random-init networks give nearly constant outputs, which would let a wrong attribution pass an
oracle comparison; perturbing every BatchNorm's affine parameters and running statistics gives
logits that vary across classes and inputs. The tests here check that they do.
"""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

SHAPE = (3, 3, 160, 192)  # batch of 3, non-square
TARGETS = [3, 250, 999]  # a different class per item


def trained_looking(arch: str, seed: int = 0) -> nn.Module:
    """``arch`` from torchvision, random init, BatchNorm calibrated on smooth random images and
    then perturbed (affine params and running means), in eval mode: normalised activations as
    in a trained net, so outputs depend on the input instead of saturating."""
    torch.manual_seed(seed)
    model = torchvision.models.get_model(arch, weights=None)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration batch
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.normal_(0.0, 0.3)
    model.train()
    with torch.no_grad():
        model(sample_batch(seed + 100, (8, 3, 96, 112)))
    for norm in norms:
        norm.running_mean.add_(0.1 * norm.running_var.sqrt() * torch.randn_like(norm.running_mean))
    return model.eval()


def sample_batch(seed: int = 1, shape: tuple[int, ...] = SHAPE) -> torch.Tensor:
    """Smooth random images (bicubic upsampled noise), each item with its own contrast and offset."""
    generator = torch.Generator().manual_seed(seed)
    batch, channels, height, width = shape
    coarse = torch.randn(batch, channels, max(2, height // 8), max(2, width // 8), generator=generator)
    smooth = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    contrast = torch.linspace(0.5, 2.0, batch).view(-1, 1, 1, 1)
    offset = torch.linspace(-0.5, 0.5, batch).view(-1, 1, 1, 1)
    return smooth * contrast + offset


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Worst item's max |actual - expected| / max |expected| (items along dim 0)."""
    actual, expected = actual.detach().double(), expected.detach().double()
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    diff = (actual - expected).flatten(1).abs().amax(dim=1)
    scale = expected.flatten(1).abs().amax(dim=1).clamp_min(1e-12)
    return float((diff / scale).max())


def hooks_of(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Every hook dict of every module, as ids, to compare before/after."""
    names = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return {
        f"{name}.{attr}": tuple(getattr(module, attr, {}).keys())
        for name, module in model.named_modules()
        for attr in names
    }


def state_of(model: nn.Module) -> tuple[dict, dict, dict]:
    """(hooks, training flags, requires_grad flags) of a model."""
    training = {name: m.training for name, m in model.named_modules()}
    grads = {name: p.requires_grad for name, p in model.named_parameters()}
    return hooks_of(model), training, grads


class OutputProbe:
    """Weak references to every tensor a module outputs, to prove no graph keeps them alive."""

    def __init__(self, module: nn.Module) -> None:
        self.refs: list[weakref.ref] = []
        self.handle = module.register_forward_hook(lambda _m, _i, out: self.refs.append(weakref.ref(out)))

    def alive(self) -> int:
        self.handle.remove()
        gc.collect()
        return sum(ref() is not None for ref in self.refs)


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_trained_looking_models_are_not_nearly_constant(arch: str) -> None:
    with torch.no_grad():
        logits = trained_looking(arch)(sample_batch())
    across_items = (logits - logits.mean(dim=0)).std()
    assert across_items > 0.1 * logits.std(), "outputs barely depend on the input"
    assert logits.argmax(dim=1).unique().numel() >= 2


def test_output_probe_sees_a_kept_graph() -> None:
    """Negative control for the hygiene tests: a graph kept by the caller keeps outputs alive."""
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    probe = OutputProbe(model[1])
    kept = model(torch.randn(2, 4, requires_grad=True)).sum()
    assert probe.alive() == 1
    del kept
    probe.refs = [probe.refs[0]]
    gc.collect()
    assert probe.refs[0]() is None
