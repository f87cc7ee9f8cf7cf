"""Smooth Grad-CAM++ (Omeiza et al. 2019)."""

from typing import ClassVar

import torch

from explainers.cam import LayerMaps, LayerMethod, grad_cam_plus_plus_weights
from explainers.gradients import noisy_moments
from explainers.options import NOISY, SCORE
from explainers.registry import register


@register
class SmoothGradCAMPlusPlus(LayerMethod):
    """Grad-CAM++ weights with G, G^2, G^3 replaced by their means over noisy copies of the input
    (SmoothGrad's noise), and the clean input's activations."""

    name = "smooth_grad_cam_plus_plus"
    label = "Smooth Grad-CAM++"
    caption = "Grad-CAM++ averaged over noisy copies of the photo: steadier maps; bright = supports the class."
    details = ("Slower: one pass per noisy copy. On a layer followed only by global pooling and a linear head the "
               "layer's gradients do not depend on the photo, so it equals Grad-CAM++ exactly there.")
    source = "Omeiza et al. 2019, Smooth Grad-CAM++: An Enhanced Inference Level Visualization Technique (arXiv:1908.01224)"
    shares_layer_pass = False
    slow = True
    noisy = True
    options: ClassVar = {"score": SCORE, **NOISY}

    def weights(self, p: LayerMaps) -> torch.Tensor:
        noise = p.noise or noisy_moments(p.model, p.x, p.targets, p.options, p.layer, input_moments=False)
        p.extras["seed"] = noise["seed"]
        return grad_cam_plus_plus_weights(p.activations, *(p.grid.to_map(m) for m in noise["layer"]))
