"""Ablation-CAM (Desai & Ramaswamy 2020)."""

from typing import ClassVar

import torch

from explainers.cam import LayerMaps, LayerMethod
from explainers.capture import find_module, hooks, preserved_state
from explainers.catalog.score_cam import BATCH_SIZE
from explainers.engine import bytes_per_row, forward_in_chunks
from explainers.errors import ExplainerError
from explainers.options import MEMORY, PROGRESS
from explainers.registry import register
from explainers.targets import target_scores

ABLATION_OFFSET = 1e7
"""An ablated channel is set to 0 when the layer's smallest value is 0 (after a ReLU), else to
min(A) - 1e7, as pytorch-grad-cam's AblationLayer (which lowers it by a further 1e7 per channel of
a batch as its in-place loop re-reads the minimum; an accident not copied: any such value
switches the channel off)."""


def ablated_scores(p: LayerMaps, item: int) -> torch.Tensor:
    """Y^c with each channel of A[item] ablated in turn, (K,).

    The layer's output is replaced by the ablated copies (a forward hook), so the network before
    the layer runs once per chunk on the single item and only the part after it on the copies.
    The first row of the first chunk is the unablated A: if its score differs from the clean
    logit (something after the layer also reads the layer's input batch), the chunk is rerun
    with the input repeated, as pytorch-grad-cam does. A transformer layer is ablated in its own
    layout (``p.grid``): channel k is switched off in every token, the class token's included, as
    pytorch-grad-cam's AblationLayerVit does.
    """
    a = p.output[item]
    channels, axis = p.grid.channels, p.grid.channel_axis
    value = 0.0 if float(a.min()) == 0.0 else float(a.min()) - ABLATION_OFFSET
    module = find_module(p.model, p.layer)
    target = p.targets[item : item + 1]
    clean = float(target_scores(p.logits[item : item + 1], target)[0])
    x = p.x[item : item + 1]
    replaced: dict[str, torch.Tensor] = {}
    state = {"repeat": False}

    def replace(_module, _inputs, output):
        return replaced["a"]

    def forward(copies: torch.Tensor) -> torch.Tensor:
        replaced["a"] = copies
        inputs = x.expand(copies.shape[0], *x.shape[1:]) if state["repeat"] else x
        logits = p.model(inputs)
        if logits.shape[0] != copies.shape[0]:
            raise ExplainerError("ablation batch lost")
        return target_scores(logits, target.expand(copies.shape[0]))

    def run(start: int, stop: int) -> torch.Tensor:
        copies = a[None].repeat(stop - start + (start == 0), *[1] * a.ndim)
        rows = torch.arange(start, stop)
        copies.movedim(axis, 1)[rows - start + (start == 0), rows] = value
        try:
            scores = forward(copies)
        except (RuntimeError, ExplainerError):
            scores = None
        if start == 0 and not state["repeat"] and (scores is None or abs(float(scores[0]) - clean) > 1e-4 * (1 + abs(clean))):
            state["repeat"] = True
            scores = forward(copies)
        return scores[1:] if start == 0 else scores

    def progress(stop: int, total: int) -> None:
        if p.options.get("progress") is not None:
            p.options["progress"](item * total + stop, p.x.shape[0] * total)

    with preserved_state(p.model), torch.no_grad(), hooks(p.model, forward=[(module, replace)]):
        row = bytes_per_row(p.model, ("ablation_cam", p.layer, tuple(p.x.shape[1:])), lambda: forward(a[None].clone()))
        return forward_in_chunks(run, channels, row, p.options["memory_mb"], progress, p.options["batch_size"], p.x.device)


@register
class AblationCAM(LayerMethod):
    """w_k = (Y^c - Y^c_k) / Y^c, Y^c_k the score with channel k of A switched off (eq. 2);
    M = ReLU(sum_k w_k A_k). One no-grad pass per channel (of the network after the layer), no gradients."""

    name = "ablation_cam"
    label = "Ablation-CAM"
    caption = "Bright regions are where the features lie whose removal lowers the class score most."
    details = "Gradient-free: the layer's channels are switched off one at a time and the score drop measured."
    source = "Desai & Ramaswamy 2020, Ablation-CAM: Visual Explanations for Deep Convolutional Network via Gradient-free Localization (WACV)"
    needs_gradients = False
    shares_layer_pass = False
    slow = True
    options: ClassVar = {"batch_size": BATCH_SIZE, "memory_mb": MEMORY, "progress": PROGRESS}

    def weights(self, p: LayerMaps) -> torch.Tensor:
        rows = []
        for item in range(p.x.shape[0]):
            clean = target_scores(p.logits[item : item + 1], p.targets[item : item + 1])[0]
            rows.append((clean - ablated_scores(p, item)) / clean)
        return torch.stack(rows)
