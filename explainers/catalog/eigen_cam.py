"""Eigen-CAM (Muhammad & Yeasin 2020) and Eigen-Grad-CAM (pytorch-grad-cam)."""

from typing import ClassVar

import torch

from explainers.cam import LayerMaps, LayerMethod
from explainers.errors import ExplainerError
from explainers.options import SCORE
from explainers.registry import register


def first_component(maps: torch.Tensor) -> torch.Tensor:
    """Projection of each position's K-vector on the first principal component, (B, K, h, w) -> (B, h, w).

    As pytorch-grad-cam's ``get_2d_projection``: rows = the h*w positions, columns centred, SVD,
    projection = centred @ V[:, 0]. An SVD's sign is arbitrary (LAPACK builds differ), so the sign
    is fixed as in pytorch-grad-cam's ``get_2d_projection_with_sign_correction`` (Seg-Eigen-CAM,
    eq. 13): flipped when |min| > |max|, so the dominant side of the component is positive.
    """
    batch, channels, height, width = maps.shape
    if height * width < 2:
        raise ExplainerError(
            f"Eigen-CAM needs a layer with more than one position; this layer's output is {height}x{width}."
        )
    rows = torch.nan_to_num(maps.double()).flatten(2).transpose(1, 2)
    rows = rows - rows.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(rows, full_matrices=False)
    projection = (rows @ vh[:, 0, :, None])[..., 0]
    flip = projection.amin(dim=1).abs() > projection.amax(dim=1).abs()
    projection = torch.where(flip[:, None], -projection, projection)
    return projection.view(batch, height, width).to(maps.dtype)


@register
class EigenCAM(LayerMethod):
    """M = ReLU(first principal component of A): the layer's dominant pattern; class-independent, no gradients."""

    name = "eigen_cam"
    label = "Eigen-CAM"
    caption = "Bright regions carry the layer's dominant pattern of features, whatever the class."
    details = "The same map for every class: it shows what the layer is most busy with, not why a class was chosen."
    source = "Muhammad & Yeasin 2020, Eigen-CAM: Class Activation Map using Principal Components (IJCNN)"
    needs_gradients = False
    target_independent = True

    def layer_map(self, p: LayerMaps) -> torch.Tensor:
        return first_component(p.activations)


@register
class EigenGradCAM(LayerMethod):
    """M = ReLU(first principal component of G * A): Eigen-CAM of the gradient-weighted activations
    (pytorch-grad-cam's EigenGradCAM), so it depends on the class."""

    name = "eigen_grad_cam"
    label = "Eigen-Grad-CAM"
    caption = "Bright regions carry the dominant pattern of class-weighted features (activations times gradients)."
    source = "pytorch-grad-cam (Gildenblat et al. 2021), EigenGradCAM: Eigen-CAM on gradients x activations"
    options: ClassVar = {"score": SCORE}

    def layer_map(self, p: LayerMaps) -> torch.Tensor:
        return first_component(p.gradients * p.activations)
