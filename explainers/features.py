"""Feature maps: a convolutional layer's channel activations for an image, sorted so the
channels that matter come first.

``feature_maps(model, x, layer, sort=...)`` records the layer's output A (B, C, h, w) in one
forward (:func:`explainers.cam.layer_pass`, which also refuses layers without a (C, h, w)
output) and ranks the channels of each item by

- ``"mean"``: the mean activation mean_ij A_k[i, j];
- ``"grad_cam"``: the Grad-CAM weight of the target class, w_k = mean_ij dY^c/dA_k[i, j]
  (Selvaraju et al. 2017, eq. 1; :func:`explainers.cam.grad_cam_weights`), i.e. how much the
  channel's activation raises the class score. Costs one extra backward over layer -> logits.

Layers with a channel dimension but 1x1 maps (``_avg_pooling``) are accepted: each map is then
one number. Layers without one ((B, K) like a linear layer) are refused with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from explainers import cam
from explainers.api import check_input
from explainers.capture import find_module
from explainers.errors import ExplainerError
from explainers.targets import SCORES, TargetSpec

SORTS = ("mean", "grad_cam")


@dataclass
class FeatureMaps:
    """A layer's channel maps for a batch, with each item's channels ranked best first.

    ``activations`` (B, C, h, w): the layer's output, exactly as the model computed it.
    ``scores`` (B, C): the sort key per channel; ``order`` (B, C): channel indices by
    descending score. ``targets`` (B,): the class behind Grad-CAM weights (None for ``"mean"``).
    """

    layer: str
    sort: str
    activations: torch.Tensor
    scores: torch.Tensor
    order: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor | None = None

    @property
    def channels(self) -> int:
        return self.activations.shape[1]


def feature_maps(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    sort: str = "mean",
    target: TargetSpec = None,
    score: str = "logit",
) -> FeatureMaps:
    """The (B, C, h, w) output of ``layer`` for ``x``, channels ranked by ``sort`` (see module doc).

    ``target`` (for ``"grad_cam"``): None (each item's top class), an int, or one int per item.
    The model is left exactly as found (hooks, train/eval flags, ``requires_grad``).
    """
    check_input(model, x)
    if sort not in SORTS:
        raise ExplainerError(f"sort must be one of {', '.join(map(repr, SORTS))}, got {sort!r}.")
    if score not in SCORES:
        raise ExplainerError(f"score must be one of {', '.join(map(repr, SCORES))}, got {score!r}.")
    find_module(model, layer)
    by_grad_cam = sort == "grad_cam"
    passed = cam.layer_pass(model, x, layer, [target], gradients=by_grad_cam, score=score)
    activations = passed.activations
    if by_grad_cam:
        scores = cam.grad_cam_weights(passed.gradients[0])
    else:
        scores = activations.mean(dim=(2, 3))
    order = scores.argsort(dim=1, descending=True, stable=True)
    return FeatureMaps(
        layer=layer,
        sort=sort,
        activations=activations,
        scores=scores.detach(),
        order=order,
        logits=passed.logits,
        targets=passed.targets[0] if by_grad_cam else None,
    )
