"""Grad-CAM++ (Chattopadhay et al. 2018)."""

from typing import ClassVar

import torch

from explainers.cam import LayerMaps, LayerMethod, grad_cam_plus_plus_weights
from explainers.options import SCORE
from explainers.registry import register


@register
class GradCAMPlusPlus(LayerMethod):
    """alpha = G^2 / (2 G^2 + sum_ab A_ab G^3 + eps); w_k = sum_ij ReLU(G_ij) alpha_ij (eq. 19, logit score)."""

    name = "grad_cam_plus_plus"
    label = "Grad-CAM++"
    caption = "Bright regions support the class; several separate objects of the class all light up."
    details = "Refines Grad-CAM's weighting so not only the most obvious instance is shown."
    source = "Chattopadhay et al. 2018, Grad-CAM++: Generalized Gradient-Based Visual Explanations (WACV)"
    options: ClassVar = {"score": SCORE}
    default = True

    def weights(self, p: LayerMaps) -> torch.Tensor:
        return grad_cam_plus_plus_weights(p.activations, p.gradients)
