"""XGrad-CAM (Fu et al. 2020)."""

from typing import ClassVar

import torch

from explainers.cam import LayerMaps, LayerMethod
from explainers.options import SCORE
from explainers.registry import register

EPS = 1e-7
"""Added to sum_ij A_k as pytorch-grad-cam does."""


@register
class XGradCAM(LayerMethod):
    """w_k = sum_ij (A_k[i, j] / (sum_ab A_k[a, b] + eps)) * dY^c / dA_k[i, j] (eq. 14): gradients
    weighted by the normalised activations; M = ReLU(sum_k w_k A_k)."""

    name = "xgrad_cam"
    label = "XGrad-CAM"
    caption = "Bright regions raise the class score; like Grad-CAM, with each gradient weighted by how active its position is."
    source = "Fu et al. 2020, Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs (BMVC)"
    options: ClassVar = {"score": SCORE}

    def weights(self, p: LayerMaps) -> torch.Tensor:
        sums = p.activations.sum(dim=(2, 3), keepdim=True)
        return (p.gradients * p.activations / (sums + EPS)).sum(dim=(2, 3))
