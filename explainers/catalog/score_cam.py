"""Score-CAM (Wang et al. 2020)."""

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from explainers.cam import LayerMaps, LayerMethod
from explainers.engine import bytes_per_row, forward_in_chunks, image_forward
from explainers.options import MEMORY, PROGRESS, Option, count
from explainers.registry import register
from explainers.targets import target_scores

EPS = 1e-8
"""Added to each channel's (max - min) as pytorch-grad-cam does."""


def check_batch_size(value: Any) -> None:
    if value is not None:
        count("batch_size", 1, 1_000_000)(value)


BATCH_SIZE = Option(None, check_batch_size, "forwards per chunk; None sizes chunks to memory_mb")


def layer_forwards(p: LayerMaps, item: int, rows: int, make, key: str) -> torch.Tensor:
    """Target logits of ``make(start, stop)`` (a batch of model inputs for x[item]) over ``rows`` rows,
    in no-grad chunks of the network's folded copy (sized to ``memory_mb``, on a CPU at most
    :data:`explainers.engine.CPU_CHUNK_MB`; or exactly ``batch_size``)."""
    net, call = image_forward(p.model)
    target = p.targets[item : item + 1]

    def run(start: int, stop: int) -> torch.Tensor:
        return target_scores(call(make(start, stop)), target.expand(stop - start))

    def progress(stop: int, total: int) -> None:
        if p.options.get("progress") is not None:
            p.options["progress"](item * total + stop, p.x.shape[0] * total)

    row = bytes_per_row(net, (key, tuple(p.x.shape[1:])), lambda: call(make(0, 1)))
    return forward_in_chunks(run, rows, row, p.options["memory_mb"], progress, p.options["batch_size"], p.x.device)


@register
class ScoreCAM(LayerMethod):
    """w_k = softmax_k(Y^c(x * s(up(A_k)))), s = min-max scaling to [0, 1], up = bilinear upsampling
    to the input (align_corners=True, as pytorch-grad-cam's UpsamplingBilinear2d); M = ReLU(sum_k w_k A_k).

    One no-grad forward per channel and item (K forwards), no gradients.
    """

    name = "score_cam"
    label = "Score-CAM"
    caption = "Bright regions are where the features lie whose part of the photo, shown alone, makes the model surest of the class."
    details = "Gradient-free: one forward pass per channel of the layer (slow on wide layers)."
    source = "Wang et al. 2020, Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks (CVPR-W)"
    needs_gradients = False
    shares_layer_pass = False
    slow = True
    options: ClassVar = {"batch_size": BATCH_SIZE, "memory_mb": MEMORY, "progress": PROGRESS}

    def weights(self, p: LayerMaps) -> torch.Tensor:
        size = p.x.shape[2:]
        rows = []
        for item in range(p.x.shape[0]):
            up = F.interpolate(p.activations[item : item + 1], size=size, mode="bilinear", align_corners=True)[0]
            low = up.flatten(1).amin(dim=1)[:, None, None]
            high = up.flatten(1).amax(dim=1)[:, None, None]
            masks = (up - low) / (high - low + EPS)
            x = p.x[item]
            scores = layer_forwards(p, item, masks.shape[0], lambda a, b: x[None] * masks[a:b, None], "score_cam")
            rows.append(torch.softmax(scores, dim=0))
        return torch.stack(rows)
