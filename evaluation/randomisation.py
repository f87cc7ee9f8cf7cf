"""Model-randomisation sanity check (Adebayo et al. 2018, "Sanity Checks for Saliency Maps", sec. 3.1).

On a deep copy of the model (the original is never touched), parameter groups are
re-initialised cumulatively from the top (logits) down; after each group every method's map
is recomputed for the same image and class and compared with its map from the trained model
by Spearman's rho of the absolute values (``absolute=True``, as the paper's main figures). A
method whose map does not depend on the weights stays similar: it is flagged when rho is
still above ``threshold`` (0.9) after the deepest randomised group.

Groups (:func:`randomisation_groups`): modules that hold parameters, in the order the forward
calls them, grouped by their top-level block (a name's first component, descending through
ModuleList / Sequential / ModuleDict containers: ``_blocks.15``, ``layer4.1``); a group of only
normalisation layers joins the group that runs before it (``_conv_head + _bn1``). Re-initialised
with each module's own ``reset_parameters()`` (PyTorch's default init; BatchNorm also resets
its running statistics), else N(mean, std) of the trained values; seed ``seed + depth``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

import explainers
from evaluation.methods import image_maps
from evaluation.ranking import spearman
from explainers.api import check_input, default_layer
from explainers.capture import hooks, preserved_state
from explainers.engine import predict
from explainers.errors import ExplainerError

THRESHOLD = 0.9
CONTAINERS = (nn.ModuleList, nn.Sequential, nn.ModuleDict)
NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


@dataclass
class Group:
    """Parameter-holding modules (forward order) re-initialised together, and their blocks."""

    blocks: list[str]
    modules: list[str]

    @property
    def label(self) -> str:
        return " + ".join(self.blocks)


@dataclass
class Cascade:
    """Maps and correlations per randomised depth (``depth_labels[d]``: randomised down to it)."""

    depth_labels: list[str]
    original: dict[str, np.ndarray]
    maps: dict[str, list[np.ndarray]]
    correlation: dict[str, np.ndarray]
    target: int
    threshold: float
    absolute: bool

    @property
    def flagged(self) -> dict[str, bool]:
        """Per method: still rho > threshold at the deepest depth (the map ignores the weights)."""
        return {m: bool(c[-1] > self.threshold) for m, c in self.correlation.items()}


def _block(model: nn.Module, name: str) -> str:
    """The top-level block holding module ``name``: its shortest prefix that is not a container."""
    parts = name.split(".")
    for depth in range(1, len(parts)):
        prefix = ".".join(parts[:depth])
        if not isinstance(model.get_submodule(prefix), CONTAINERS):
            return prefix
    return name


def randomisation_groups(model: nn.Module, x: torch.Tensor) -> list[Group]:
    """Parameter groups from the top of the network down (see the module docstring)."""
    order: list[str] = []
    owners = [(n, m) for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]

    def recorder(name: str):
        def hook(_module, _inputs) -> None:
            if name not in order:
                order.append(name)
        return hook

    with hooks(model, pre=[(m, recorder(n)) for n, m in owners]):
        predict(model, x[:1])
    modules = dict(model.named_modules())
    groups: list[Group] = []
    for name in order:
        block = _block(model, name)
        if groups and block == groups[-1].blocks[-1]:
            groups[-1].modules.append(name)
        elif groups and block == name and isinstance(modules[name], NORMS):
            groups[-1].modules.append(name)  # a top-level norm layer joins the layer it normalises
            groups[-1].blocks.append(block)
        else:
            groups.append(Group([block], [name]))
    if not groups:
        raise ExplainerError("The model has no parameters that its forward uses: nothing to randomise.")
    return groups[::-1]


def reinitialise(module: nn.Module) -> None:
    """``reset_parameters()`` where defined, else N(mean, std) of each own parameter's trained values."""
    if callable(getattr(module, "reset_parameters", None)):
        module.reset_parameters()
        return
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            mean, std = float(p.mean()), float(p.std()) if p.numel() > 1 else 0.0
            p.normal_(mean, std if std > 0 else 0.01)


def randomisation_cascade(
    model: nn.Module,
    x: torch.Tensor,
    methods: Sequence[str],
    target: int | None = None,
    layer: str | None = None,
    *,
    depth: int | None = None,
    seed: int = 0,
    absolute: bool = True,
    threshold: float = THRESHOLD,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Cascade:
    """Randomise ``depth`` groups (default all) cumulatively on a copy; compare every method's map.

    ``target`` (default: the trained model's prediction) and ``layer`` (default: the automatic
    layer of the trained model) stay fixed down the cascade. ``options[method]`` go to that
    method. ``progress(done, total)`` counts depths. If ``model`` is shared between threads,
    hold its lock during this call: the copy is taken here.
    """
    check_input(model, x)
    if x.shape[0] != 1:
        raise ExplainerError("The randomisation check runs on one image at a time.")
    if not methods:
        raise ExplainerError("Pick at least one method.")
    groups = randomisation_groups(model, x)
    total = len(groups) if depth is None else depth
    if isinstance(total, bool) or not isinstance(total, int) or not 1 <= total <= len(groups):
        raise ExplainerError(f"depth must be a whole number from 1 to {len(groups)}, got {depth!r}.")
    target = int(predict(model, x).argmax()) if target is None else target
    uses_layer = any(explainers.method(m).needs_layer for m in methods)
    layer = layer or (default_layer(model, x) if uses_layer else None)
    original = {m: v.numpy() for m, v in image_maps(model, x, methods, target, layer, options).items()}
    with preserved_state(model):
        twin = copy.deepcopy(model)
    modules = dict(twin.named_modules())
    maps: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    correlation: dict[str, list[float]] = {m: [] for m in methods}
    for d, group in enumerate(groups[:total]):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + d)
            for name in group.modules:
                reinitialise(modules[name])
        for method, heat in image_maps(twin, x, methods, target, layer, options).items():
            maps[method].append(heat.numpy())
            correlation[method].append(spearman(original[method], heat, absolute))
        if progress is not None:
            progress(d + 1, total)
    return Cascade([g.label for g in groups[:total]], original, maps,
                   {m: np.asarray(c) for m, c in correlation.items()}, target, threshold, absolute)
