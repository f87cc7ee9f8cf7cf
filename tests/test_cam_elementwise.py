"""Grad-CAM element-wise against pytorch-grad-cam (oracle) and a hand-computed tiny layer."""

from __future__ import annotations

import pytest
import torch
from pytorch_grad_cam import GradCAMElementWise

import explainers
from explainers.cam import LayerMaps
from tests.test_explainers_oracles_new import ARCHS, oracle_raw
from tests.test_explainers_support import TARGETS, relative_error, sample_batch, trained_looking


@pytest.mark.parametrize("arch", list(ARCHS))
def test_matches_pytorch_grad_cam(arch: str) -> None:
    model = trained_looking(arch)
    layer = ARCHS[arch]
    x = sample_batch()
    ours = explainers.explain(model, x, "grad_cam_elementwise", TARGETS, layer)
    theirs, _, _ = oracle_raw(GradCAMElementWise, model, dict(model.named_modules())[layer], x)
    assert theirs.amax(dim=(1, 2)).min() > 0
    assert relative_error(ours.raw, theirs) <= 1e-4


def test_known_values_negative_products_do_not_cancel() -> None:
    """Two channels at one position: G*A = (+2, -3). HiResCAM sums to -1 -> 0; element-wise keeps 2."""
    a = torch.tensor([[[[1.0]], [[3.0]]]])
    g = torch.tensor([[[[2.0]], [[-1.0]]]])
    p = LayerMaps(None, torch.zeros(1, 3, 4, 4), "l", a, g, torch.tensor([0]), torch.zeros(1, 2))
    assert explainers.method("grad_cam_elementwise").raw_map(p).item() == 2.0
    assert explainers.method("hirescam").raw_map(p).item() == 0.0
