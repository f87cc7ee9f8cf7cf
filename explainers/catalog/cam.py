"""CAM (Zhou et al. 2016, "Learning Deep Features for Discriminative Localization")."""

import torch

from explainers.cam import LayerMaps, LayerMethod
from explainers.registry import register


@register
class CAM(LayerMethod):
    """M_c = sum_k W[c, k] A_k: the final linear layer's weights for class c on the layer's maps.

    Only for networks whose layer reaches the logits through global average pooling and one
    linear layer (checked literally by :func:`explainers.cam.classifier_head`). Signed, no ReLU.
    """

    name = "cam"
    label = "CAM"
    caption = "Red regions hold features that the final layer counts toward the class, blue ones against it."
    details = ("Read straight off the model's own classifier weights; coarse (the layer's grid), and only for "
               "networks that end in average pooling and one linear layer.")
    source = "Zhou et al. 2016, Learning Deep Features for Discriminative Localization (CVPR)"
    needs_gradients = False
    signed = True
    relu = False
    default = True

    def weights(self, p: LayerMaps) -> torch.Tensor:
        return p.head()[p.targets]
