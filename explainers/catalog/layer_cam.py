"""Layer-CAM (Jiang et al. 2021)."""

from typing import ClassVar

import torch
import torch.nn.functional as F

from explainers.cam import LayerMaps, LayerMethod
from explainers.options import SCORE
from explainers.registry import register


@register
class LayerCAM(LayerMethod):
    """M = ReLU(sum_k ReLU(G_k) * A_k) (eq. 4-5): each position weighted by its own positive gradient,
    which keeps fine detail on earlier layers."""

    name = "layer_cam"
    label = "Layer-CAM"
    caption = "Bright regions are positions whose features the class score grows with; sharper than Grad-CAM on early layers."
    source = "Jiang et al. 2021, LayerCAM: Exploring Hierarchical Class Activation Maps for Localization (IEEE TIP)"
    options: ClassVar = {"score": SCORE}

    def layer_map(self, p: LayerMaps) -> torch.Tensor:
        return (F.relu(p.gradients) * p.activations).sum(dim=1)
