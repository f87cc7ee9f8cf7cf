"""The bundled EfficientNet-Lite0 on the bundled photos: IG completeness at the default options,
and the CAM family on the registry's default layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import explainers

models = pytest.importorskip("models")


@pytest.fixture(scope="module")
def lite0():
    return models.load_image_model("efficientnet_lite0")


def black_pixel(model) -> list[float]:
    return model.to_tensor(np.zeros((1, 1, 3), dtype=np.uint8))[0, :, 0, 0].tolist()


@pytest.mark.slow
@pytest.mark.parametrize("sample,baseline", [("coffee", "zero"), ("cat", "black")])
def test_integrated_gradients_is_complete_at_defaults(lite0, sample: str, baseline: str) -> None:
    """Two of the 16 sample x baseline cases (the rest cost up to 800 steps each on 2 cores)."""
    x = lite0.preprocess(models.load_sample(sample))
    result = explainers.explain(lite0.net, x, "integrated_gradients", baseline=baseline, black=black_pixel(lite0))
    change = (result.extras["score"] - result.extras["baseline_score"]).abs()
    assert change > 0.5, "a baseline scoring like the image would make the check vacuous"
    assert float(result.extras["delta"].abs()) <= 0.01 * float(change), result.extras["steps"]


def test_cam_family_on_the_default_layer(lite0) -> None:
    x = torch.cat([lite0.preprocess(models.load_sample(name)) for name in ("cat", "coffee")])
    shared = explainers.explain_many(lite0.net, x, ["cam", "grad_cam", "grad_cam_plus_plus"], layer=lite0.default_layer, top_k=2)
    assert [lite0.labels[t] for t in shared["cam"][0].targets] == ["tiger cat", "espresso"]
    for results in shared.values():
        for result in results:
            assert result.raw.shape == (2, 7, 7) and result.maps.shape == (2, 224, 224)
            assert torch.isfinite(result.maps).all()
