"""HiResCAM (Draelos & Carin 2020)."""

from typing import ClassVar

import torch

from explainers.cam import LayerMaps, LayerMethod
from explainers.options import SCORE
from explainers.registry import register


@register
class HiResCAM(LayerMethod):
    """M = ReLU(sum_k G_k * A_k): the gradient multiplies each activation element-wise instead of
    being averaged into one weight per channel, so the map shows where the score really came from
    (for a layer followed by pooling and one linear layer it equals CAM's map)."""

    name = "hirescam"
    label = "HiResCAM"
    caption = "Bright regions are the layer positions whose features, weighted by their own gradient, raise the class score."
    details = "Grad-CAM without averaging the gradients over space, which makes it faithful to the model's computation."
    source = "Draelos & Carin 2020, Use HiResCAM instead of Grad-CAM for faithful explanations (arXiv:2011.08891)"
    options: ClassVar = {"score": SCORE}

    def layer_map(self, p: LayerMaps) -> torch.Tensor:
        return (p.gradients * p.activations).sum(dim=1)
