"""Listing a model's layers with their output shapes, and the automatic target layer.

The automatic rule follows torchcam's ``locate_candidate_layer``: run one forward, record
every module's output shape, and take the last module whose output is still a 4-D
feature map with spatial size > 1 before the network pools it away.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from explainers.capture import hooks
from explainers.errors import ExplainerError


@dataclass(frozen=True)
class LayerInfo:
    """A module of the model, the type of that module, and its output shape for one input."""

    name: str
    kind: str
    shape: tuple[int, ...]

    @property
    def spatial(self) -> bool:
        """True for a 4-D output (B, C, H, W) with more than one spatial position."""
        return len(self.shape) == 4 and self.shape[2] * self.shape[3] > 1


def layer_shapes(model: nn.Module, x: torch.Tensor) -> list[LayerInfo]:
    """Output shape of every named module (in call order) for input ``x``, from one forward."""
    seen: dict[str, LayerInfo] = {}

    def recorder(name: str):
        def hook(module: nn.Module, _inputs, output) -> None:
            if isinstance(output, torch.Tensor) and name not in seen:
                seen[name] = LayerInfo(name, type(module).__name__, tuple(output.shape))

        return hook

    recorders = [(module, recorder(name)) for name, module in model.named_modules() if name]
    with hooks(model, forward=recorders), torch.no_grad():
        model(x)
    return list(seen.values())


def auto_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The last module with a spatial 4-D output before the output stops being spatial."""
    return pick_auto_layer(layer_shapes(model, x))


def pick_auto_layer(infos: list[LayerInfo]) -> str:
    """:func:`auto_layer`'s rule applied to an already probed :func:`layer_shapes` listing."""
    candidate = None
    for info in infos:
        if info.spatial:
            candidate = info.name
        elif candidate is not None and len(info.shape) < 4:
            break
    if candidate is None:
        raise ExplainerError(
            "This model has no layer with a spatial (B, C, H, W) output larger than 1x1, "
            "so there is no feature map to explain. Pick an input-gradient method instead."
        )
    return candidate
