"""After every call, success or failure: no hooks left, flags as before, no graph kept alive;
and every user mistake answered with an ExplainerError that says what to fix."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import explainers
from explainers import ExplainerError
from tests.test_explainers_support import OutputProbe, sample_batch, state_of

QUICK = {"samples": 2, "steps": 3, "tolerance": 0}
SHAPE = (2, 3, 64, 80)


def quick(method: str) -> dict:
    return {k: v for k, v in QUICK.items() if k in explainers.OPTIONS[method]}


class Boom(nn.Module):
    """Raises in forward when armed: an exception from inside the model."""

    armed = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.armed:
            raise RuntimeError("boom inside forward")
        return x


def mixed_state_model() -> nn.Module:
    """resnet18 in train mode, with one frozen block and one eval submodule, and a Boom after layer4."""
    model = torchvision.models.resnet18(num_classes=10)
    model.layer4 = nn.Sequential(model.layer4, Boom())
    model.train()
    model.layer1.eval()
    for p in model.layer2.parameters():
        p.requires_grad_(False)
    return model


CNN_METHODS = [m.name for m in explainers.methods("image") if m.family != "attention"]
"""Attention views need a vision transformer: tests/test_vit_models.py checks them on one."""


@pytest.mark.parametrize("method", CNN_METHODS)
@pytest.mark.parametrize("grad_enabled", [True, False])
def test_success_leaves_no_trace(method: str, grad_enabled: bool) -> None:
    model = mixed_state_model()
    before = state_of(model)
    probe = OutputProbe(model.fc)
    with torch.set_grad_enabled(grad_enabled):
        result = explainers.explain(model, sample_batch(0, SHAPE), method, layer="layer4.0", **quick(method))
        assert torch.is_grad_enabled() == grad_enabled
    assert probe.alive() == 0, "an autograd graph still holds the model's outputs"
    assert state_of(model) == before
    for value in (result.maps, result.raw, result.pixel, *result.extras.values()):
        if isinstance(value, torch.Tensor):
            assert value.grad_fn is None and not value.requires_grad
    assert result.maps.shape == (2, 64, 80)


@pytest.mark.parametrize("method", explainers.METHODS)
def test_exception_inside_forward_leaves_no_trace(method: str) -> None:
    model = mixed_state_model()
    before = state_of(model)
    model.layer4[1].armed = True
    with pytest.raises(RuntimeError, match="boom inside forward"):
        explainers.explain(model, sample_batch(0, SHAPE), method, target=1, layer="layer4.0", **quick(method))
    assert state_of(model) == before
    assert torch.is_grad_enabled()


@pytest.mark.parametrize("method", ["smoothgrad", "integrated_gradients", "smooth_grad_cam_plus_plus"])
def test_exception_in_progress_callback_leaves_no_trace(method: str) -> None:
    model = mixed_state_model()
    before = state_of(model)

    def progress(done: int, total: int) -> None:
        raise KeyboardInterrupt("user stopped")

    with pytest.raises(KeyboardInterrupt):
        explainers.explain(model, sample_batch(0, SHAPE), method, layer="layer4.0", progress=progress, **quick(method))
    assert state_of(model) == before


@pytest.fixture(scope="module")
def small() -> nn.Module:
    return torchvision.models.resnet18(num_classes=10).eval()


@pytest.mark.parametrize(
    ("method", "kwargs", "message"),
    [
        ("grad_cam", {"target": 10}, "out of range: the model has 10 classes"),
        ("saliency", {"target": -1}, "out of range"),
        ("grad_cam", {"target": [1, 2, 3]}, "3 targets for 2 items"),
        ("grad_cam", {"target": 1.5}, "class index"),
        ("grad_cam", {"layer": "layer9"}, "No layer named 'layer9'; candidates"),
        ("grad_cam", {"layer": "fc"}, "not a (B, C, H, W) feature map"),
        ("integrated_gradients", {"steps": 0}, "steps must be a whole number from 1"),
        ("integrated_gradients", {"steps": 10**6}, "steps must be a whole number from 1"),
        ("integrated_gradients", {"baseline": torch.full((3, 64, 80), float("nan"))}, "NaN"),
        ("integrated_gradients", {"baseline": torch.zeros(5, 5)}, "does not fit the input"),
        ("integrated_gradients", {"baseline": "grey"}, "baseline must be one of"),
        ("integrated_gradients", {"baseline": "black"}, "needs black="),
        ("integrated_gradients", {"rule": "simpson"}, "rule must be one of"),
        ("integrated_gradients", {"tolerance": -1}, "tolerance must be a finite number >= 0"),
        ("smoothgrad", {"noise_level": -0.1}, "noise_level must be a finite number >= 0"),
        ("smoothgrad", {"noise_level": float("nan")}, "noise_level"),
        ("smoothgrad", {"samples": 0}, "samples must be a whole number"),
        ("smoothgrad", {"memory_mb": 0}, "memory_mb"),
        ("smoothgrad", {"progress": 3}, "progress must be"),
        ("saliency", {"score": "softmax"}, "score must be one of"),
        ("grad_cam", {"steps": 5}, "Unknown option(s) steps for grad_cam"),
        ("no_such_method", {}, "Unknown method 'no_such_method'"),
    ],
)
def test_user_mistakes_get_a_clear_message(small, method: str, kwargs: dict, message: str) -> None:
    before = state_of(small)
    with pytest.raises(ExplainerError) as caught:
        explainers.explain(small, sample_batch(0, SHAPE[:1] + SHAPE[1:]), method, **kwargs)
    assert message in str(caught.value)
    assert state_of(small) == before


@pytest.mark.parametrize(
    "x", [torch.zeros(3, 64, 64), torch.zeros(1, 3, 64, 64, dtype=torch.long), torch.full((1, 3, 8, 8), float("inf"))]
)
def test_bad_inputs_are_refused(small, x) -> None:
    with pytest.raises(ExplainerError, match="x "):
        explainers.explain(small, x, "saliency")


def test_cam_refuses_a_head_that_is_not_pool_plus_linear() -> None:
    model = torchvision.models.mobilenet_v3_small(num_classes=10).eval()  # Linear, Hardswish, Dropout, Linear
    with pytest.raises(ExplainerError, match="global average pooling and one linear layer") as caught:
        explainers.explain(model, sample_batch(0, (1, 3, 64, 64)), "cam")
    assert "Grad-CAM" in str(caught.value)
    assert not any(state_of(model)[0].values()), "hooks left behind"


def test_cam_refuses_a_layer_that_does_not_feed_the_pool() -> None:
    model = torchvision.models.resnet18(num_classes=10).eval()
    with pytest.raises(ExplainerError, match="differ|off by|No linear layer"):
        explainers.explain(model, sample_batch(0, (1, 3, 64, 64)), "cam", layer="layer4.1.conv2")


def test_shared_module_is_refused() -> None:
    act = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(3, 4, 3), act, nn.Conv2d(4, 4, 3), act, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ExplainerError, match="more than once"):
        explainers.explain(model, sample_batch(0, (1, 3, 16, 16)), "grad_cam", layer="1")
    assert not any(state_of(model)[0].values()), "hooks left behind"
