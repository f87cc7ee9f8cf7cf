"""Smooth Grad-CAM++ (Omeiza et al. 2019)."""

from typing import ClassVar

import torch

from explainers.cam import LayerMaps, LayerMethod, grad_cam_plus_plus_weights, smoothed_gradient_moments
from explainers.engine import noise_generator
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
    options: ClassVar = {"score": SCORE, **NOISY}

    def weights(self, p: LayerMaps) -> torch.Tensor:
        o = p.options
        generator = noise_generator(o["seed"], p.x.device)
        p.extras["seed"] = generator.initial_seed()
        moments = smoothed_gradient_moments(
            p.model, p.x, p.layer, p.targets, samples=o["samples"], noise_level=o["noise_level"],
            generator=generator, score=o["score"], memory_mb=o["memory_mb"], progress=o["progress"],
        )
        return grad_cam_plus_plus_weights(p.activations, *moments)
