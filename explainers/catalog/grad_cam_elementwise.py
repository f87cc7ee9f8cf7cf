"""Grad-CAM element-wise (pytorch-grad-cam's GradCAMElementWise)."""

from typing import ClassVar

import torch
import torch.nn.functional as F

from explainers.cam import LayerMaps, LayerMethod
from explainers.options import SCORE
from explainers.registry import register


@register
class GradCAMElementWise(LayerMethod):
    """M = ReLU(sum_k ReLU(G_k * A_k)): like HiResCAM, but each position-channel product is cut at
    zero before the sum, so a channel that argues against the class cannot cancel one that argues for it."""

    name = "grad_cam_elementwise"
    label = "Grad-CAM element-wise"
    caption = "Bright regions hold features whose own gradient says they raise the class score, counted one by one."
    source = "pytorch-grad-cam (Gildenblat et al. 2021), GradCAMElementWise: Grad-CAM with element-wise ReLU(G * A)"
    options: ClassVar = {"score": SCORE}

    def layer_map(self, p: LayerMaps) -> torch.Tensor:
        return F.relu(p.gradients * p.activations).sum(dim=1)
