"""Listing a model's layers with their output shapes and image grids, and the automatic target layer.

Each layer's output is read as an image grid where it is one (:mod:`explainers.tokens`: feature
maps (B, C, h, w), channels-last maps (B, h, w, C), or patch tokens (B, T, D)); these are the CAM
family's candidate layers.

The automatic rule for convolutional networks follows torchcam's ``locate_candidate_layer``: run
one forward, record every module's output shape, and take the last module whose output is still
a spatial grid before the network pools it away. A transformer with patch-token layers gets the
last normalisation layer with a grid output whose patch positions still reach the logits (a
nonzero gradient, measured with one backward from the top class on a fixed random input). On a
ViT this is the last block's first norm (``ln_1`` / ``layernorm_before``), pytorch-grad-cam's
recommendation: after that block's attention only the class token flows to the head, so later
layers' patch tokens get no gradient and their maps would be blank. Where every token is pooled
(Swin, BEiT's mean pooling) it is the last norm before the pooling. When no norm gets a gradient
at all (a head of zeros, as torchvision initialises ViT's), the last block's first norm by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from explainers.capture import capture, hooks
from explainers.errors import ExplainerError
from explainers.tokens import Grid, grid_of, patch_size

PROBE_SEED = 0
"""Seed of the random input with which the transformer rule measures gradients."""


@dataclass(frozen=True)
class LayerInfo:
    """A module of the model, the type of that module, its output shape for one input, and the
    image grid that output covers (None when it is none, e.g. after pooling)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    grid: Grid | None = None

    @property
    def spatial(self) -> bool:
        """True for a grid output with more than one position."""
        return self.grid is not None and self.grid.height * self.grid.width > 1

    def describe(self) -> str:
        """The layer as a layer list shows it: name and grid, e.g. ``layer4  (512 x 7x7)``."""
        return f"{self.name}  ({self.grid.describe() if self.grid else 'x'.join(map(str, self.shape[1:]))})"


def layer_shapes(model: nn.Module, x: torch.Tensor) -> list[LayerInfo]:
    """Output shape and grid of every named module (in call order) for input ``x``, from one forward.

    A module returning a tuple (a transformer block, an attention layer) is listed with its first
    item, which is what :func:`explainers.capture.capture` records.
    """
    seen: dict[str, LayerInfo] = {}
    size, patch = tuple(x.shape[2:]), patch_size(model, x.shape[1])

    def recorder(name: str):
        def hook(module: nn.Module, _inputs, output) -> None:
            first = output[0] if isinstance(output, (tuple, list)) and output else output
            if isinstance(first, torch.Tensor) and name not in seen:
                shape = tuple(first.shape)
                seen[name] = LayerInfo(name, type(module).__name__, shape, grid_of(shape, size, patch))

        return hook

    recorders = [(module, recorder(name)) for name, module in model.named_modules() if name]
    with hooks(model, forward=recorders), torch.no_grad():
        model(x)
    return list(seen.values())


def auto_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The automatic target layer for inputs shaped like ``x`` (see the module docstring)."""
    return pick_auto_layer(layer_shapes(model, x), model, x)


def pick_auto_layer(infos: list[LayerInfo], model: nn.Module | None = None, x: torch.Tensor | None = None) -> str:
    """:func:`auto_layer`'s rule applied to an already probed :func:`layer_shapes` listing.

    The transformer rule needs ``model`` and ``x`` (for its one backward); without them, or when no
    layer outputs patch tokens, the convolutional rule is applied.
    """
    if model is not None and x is not None and any(i.grid is not None and i.grid.layout == "tokens" for i in infos):
        found = _transformer_layer(model, x, infos)
        if found is not None:
            return found
    candidate = None
    for info in infos:
        if info.spatial:
            candidate = info.name
        elif candidate is not None and len(info.shape) < 3:
            break
    if candidate is None:
        raise ExplainerError(
            "This model has no layer with a spatial output larger than 1x1 (a feature map or patch "
            "tokens), so there is no map to explain. Pick an input-gradient method instead."
        )
    return candidate


def _transformer_layer(model: nn.Module, x: torch.Tensor, infos: list[LayerInfo]) -> str | None:
    """The last norm layer whose grid positions get a nonzero gradient of the top logit, or None."""
    norms = [i for i in infos if i.spatial and "Norm" in i.kind]
    if not norms:
        return None
    generator = torch.Generator().manual_seed(PROBE_SEED)
    probe = torch.randn(x[:1].shape, generator=generator, dtype=x.dtype).to(x.device).requires_grad_()
    names = [i.name for i in norms]
    with capture(model, names) as captured:
        logits = model(probe)
        outputs = [captured[n] for n in names]
        grads = torch.autograd.grad(logits[0].max(), outputs, allow_unused=True)
    for info, grad in zip(reversed(norms), reversed(grads)):
        if grad is not None and info.grid.to_map(grad).abs().amax() > 0:
            return info.name
    return _last_block_first_norm(norms)


def _last_block_first_norm(norms: list[LayerInfo]) -> str | None:
    """Where no gradient reaches any norm (e.g. torchvision's zero-initialised ViT head): the first
    norm of the last module holding two or more norms (a block: ``ln_1`` and ``ln_2``), by name."""
    blocks: dict[str, list[str]] = {}
    for info in norms:
        blocks.setdefault(info.name.rpartition(".")[0], []).append(info.name)
    several = [names for names in blocks.values() if len(names) > 1]
    return several[-1][0] if several else None
