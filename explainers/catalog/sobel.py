"""The "sobel" control: an edge map of the photo, computed without the model."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from explainers import perturbation as pert
from explainers.attribution import Attribution
from explainers.registry import Method, register

SOBEL = torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]) / 4
"""d/dy (rows); its transpose is d/dx. Divided by 4 as scikit-image's ``sobel_h`` / ``sobel_v``."""


def edges(x: torch.Tensor) -> torch.Tensor:
    """Sobel edge magnitude (B, H, W) of the channel mean of ``x`` (B, C, H, W):
    sqrt((G_y^2 + G_x^2) / 2), edge pixels replicated (= scikit-image's ``filters.sobel``, mode "reflect")."""
    gray = F.pad(x.mean(dim=1, keepdim=True), (1, 1, 1, 1), mode="replicate")
    kernel = SOBEL.to(device=x.device, dtype=x.dtype)
    gy = F.conv2d(gray, kernel[None, None])
    gx = F.conv2d(gray, kernel.T.contiguous()[None, None])
    return ((gy.square() + gx.square()) / 2).sqrt()[:, 0]


@register
class Sobel(Method):
    """map = |Sobel gradient| of the grey image, sqrt((G_x^2 + G_y^2) / 2) (Sobel & Feldman 1968, scaled as
    scikit-image). A control: a method whose map resembles this one may be showing edges, not the model
    (Adebayo et al. 2018 found several saliency methods close to an edge detector)."""

    name = "sobel"
    label = "Edges (Sobel, control)"
    caption = "Bright lines are the photo's edges, found without the model: a method that looks like this may only be showing edges."
    details = "A control for comparing methods; it is the same for every class and every model."
    source = "Sobel & Feldman 1968, an isotropic 3x3 image gradient operator; as a control: Adebayo et al. 2018 (NeurIPS)"
    family = "control"
    needs_gradients = False
    model_agnostic = True
    target_independent = True

    def forwards(self, shape, options=None, kind="image"):
        return 0

    def explain_image(self, model, x, target, options):
        targets, _ = pert.item_targets(model, x, target)  # checks the target; the map does not use it
        return Attribution(edges(x), targets.tolist(), self.name)
