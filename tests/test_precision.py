"""Fast mode (bfloat16 autocast) for the input-gradient methods: close to float32, opt-in, validated."""

from __future__ import annotations

import pytest
import torch

import explainers
from explainers.precision import native_bfloat16
from tests.test_explainers_support import TARGETS, sample_batch, state_of, trained_looking
from ui.methods import fast_mode_note


@pytest.fixture(scope="module")
def model():
    return trained_looking("resnet18")


def relative_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm())


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


@pytest.mark.parametrize(("method", "options"), [
    ("saliency", {}),
    ("smoothgrad", {"samples": 2, "seed": 0}),
    ("integrated_gradients", {"steps": 4, "tolerance": 0}),
])
def test_bfloat16_is_close_to_float32_and_not_equal(model, method: str, options: dict) -> None:
    x = sample_batch(2, (3, 3, 64, 80))
    exact = explainers.explain(model, x, method, TARGETS, **options)
    before = state_of(model)
    fast = explainers.explain(model, x, method, TARGETS, precision="bfloat16", **options)
    assert state_of(model) == before and not torch.is_autocast_enabled("cpu")
    assert fast.pixel.dtype == torch.float32 and torch.isfinite(fast.pixel).all()
    # bfloat16 keeps 8 bits of mantissa, and ReLU units near their kink flip: measured 0.26-0.33
    # relative L2 per pixel on this model (0.4-0.7 on the bundled EfficientNet-Lite0), the same picture
    error = relative_l2(fast.pixel, exact.pixel)
    assert 0 < error < 0.5, error
    assert pearson(fast.maps, exact.maps) > 0.85
    assert fast.options["precision"] == "bfloat16" and exact.options["precision"] == "float32"


def test_precision_is_validated_and_reported() -> None:
    with pytest.raises(explainers.ExplainerError, match="precision must be one of"):
        explainers.explain(torch.nn.Conv2d(3, 2, 1), torch.zeros(1, 3, 4, 4), "saliency", 0, precision="float16")
    assert isinstance(native_bfloat16("cpu"), bool)
    note = fast_mode_note("cpu")
    assert ("native" in note) if native_bfloat16("cpu") else ("slower" in note)
