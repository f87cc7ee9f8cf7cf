"""Model-randomisation sanity check (Adebayo et al. 2018, "Sanity Checks for Saliency Maps", sec. 3.1).

On deep copies of the model (the original is never touched), parameter groups are
re-initialised cumulatively from the top (logits) down; after each group every method's map
is recomputed for the same image and class and compared with its map from the trained model
by Spearman's rho of the absolute values (``absolute=True``, as the paper's main figures):
:func:`randomisation_cascade`, drawn as the cascade figure.

The verdict (:func:`sanity_check`) reads full randomisation, every group re-drawn, on two
copies with independent seeds A and B. ``rho`` = mean of |rho(trained, A)| and |rho(trained, B)|
(an inverted map tracks as much as an equal one: Eigen-CAM's sign is arbitrary); the noise floor
= |rho(A, B)|, how alike two maps of this method are on this image when neither model learned
anything. A method *fails* when its map still tracks the trained model's:
``rho > threshold`` (0.5), or ``rho > floor + margin`` (0.2). Otherwise it *passes*. A
randomised map that is zero everywhere counts as changed (rho 0). A trained map that ranks
nothing gets no verdict.

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
from evaluation.verdict import FAILS, PASSES, Verdict, no_verdict
from explainers.api import check_input, default_layer
from explainers.capture import hooks, preserved_state
from explainers.engine import predict
from explainers.errors import ExplainerError

THRESHOLD = 0.5
MARGIN = 0.2
SECOND_SEED = 1000
MapFunction = Callable[[nn.Module, torch.Tensor, int], Any]
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
    absolute: bool


@dataclass
class Sanity:
    """One method at full randomisation: ``rhos`` (trained vs A, trained vs B; NaN: that map is
    blank), their mean ``rho`` (:func:`changed_rho`), the noise floor rho(A, B), and the verdict."""

    rho: float
    rhos: tuple[float, float]
    floor: float
    verdict: Verdict


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


def _maps(model: nn.Module, x: torch.Tensor, methods: Sequence[str], functions: Mapping[str, MapFunction],
          target: int, layer: str | None, options: Mapping[str, Mapping[str, Any]] | None) -> dict[str, np.ndarray]:
    """Every method's and every map function's (H, W) map of ``model``."""
    found = {m: v.numpy() for m, v in image_maps(model, x, methods, target, layer, options).items()} if methods else {}
    for name, function in functions.items():
        found[name] = np.asarray(function(model, x, target), dtype=np.float64)
    return found


def _prepare(model: nn.Module, x: torch.Tensor, methods: Sequence[str], functions: Mapping[str, MapFunction] | None,
             target: int | None, layer: str | None) -> tuple[list[Group], int, str | None, dict[str, MapFunction]]:
    check_input(model, x)
    if x.shape[0] != 1:
        raise ExplainerError("The randomisation check runs on one image at a time.")
    functions = dict(functions or {})
    if not methods and not functions:
        raise ExplainerError("Pick at least one method.")
    groups = randomisation_groups(model, x)
    target = int(predict(model, x).argmax()) if target is None else target
    uses_layer = any(explainers.method(m).needs_layer for m in methods)
    return groups, target, layer or (default_layer(model, x) if uses_layer else None), functions


def _copy(model: nn.Module) -> tuple[nn.Module, dict[str, nn.Module]]:
    with preserved_state(model):
        twin = copy.deepcopy(model)
    return twin, dict(twin.named_modules())


def _randomise(modules: dict[str, nn.Module], group: Group, seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in group.modules:
            reinitialise(modules[name])


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
    options: Mapping[str, Mapping[str, Any]] | None = None,
    functions: Mapping[str, MapFunction] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Cascade:
    """Randomise ``depth`` groups (default all) cumulatively on a copy; compare every method's map.

    ``target`` (default: the trained model's prediction) and ``layer`` (default: the automatic
    layer of the trained model) stay fixed down the cascade. ``options[method]`` go to that
    method; ``functions[name](model, x, target)`` give further (H, W) maps (e.g. a control).
    ``progress(done, total)`` counts depths. If ``model`` is shared between threads, hold its
    lock during this call: the copy is taken here.
    """
    groups, target, layer, functions = _prepare(model, x, methods, functions, target, layer)
    total = len(groups) if depth is None else depth
    if isinstance(total, bool) or not isinstance(total, int) or not 1 <= total <= len(groups):
        raise ExplainerError(f"depth must be a whole number from 1 to {len(groups)}, got {depth!r}.")
    original = _maps(model, x, methods, functions, target, layer, options)
    twin, modules = _copy(model)
    maps: dict[str, list[np.ndarray]] = {m: [] for m in original}
    correlation: dict[str, list[float]] = {m: [] for m in original}
    for d, group in enumerate(groups[:total]):
        _randomise(modules, group, seed + d)
        for method, heat in _maps(twin, x, methods, functions, target, layer, options).items():
            maps[method].append(heat)
            correlation[method].append(spearman(original[method], heat, absolute))
        if progress is not None:
            progress(d + 1, total)
    return Cascade([g.label for g in groups[:total]], original, maps,
                   {m: np.asarray(c) for m, c in correlation.items()}, target, absolute)


def changed_rho(rhos: Sequence[float]) -> float:
    """Mean of ``|rhos|``, a NaN (the randomised map is blank: it changed completely) counted as 0."""
    return float(np.mean([0.0 if np.isnan(r) else abs(r) for r in rhos]))


def sanity_verdict(rho: float, floor: float, trained_ranks: bool, threshold: float = THRESHOLD,
                   margin: float = MARGIN) -> Verdict:
    """Pass / fail from rho at full randomisation and the noise floor (see the module docstring)."""
    metric = "Sanity check"
    if not trained_ranks:
        return no_verdict(metric, "The trained model's map ranks nothing (it is the same everywhere), so there "
                                  "is nothing to compare.")
    floor_text = "n/a (blank maps)" if np.isnan(floor) else f"{floor:.2f}"
    if rho > threshold or (not np.isnan(floor) and rho > floor + margin):
        why = (f"Maps of two independently randomised models agree about as much (rho {floor_text}), so this map "
               "is shaped by the image and the method itself, not by what the model learned."
               if not np.isnan(floor) and floor >= rho - margin else
               f"Two independently randomised models' maps agree only at rho {floor_text}, so the trained "
               "model's map survived the randomisation of every weight.")
        return Verdict(metric, FAILS, f"With every block re-initialised, its map still has rank correlation "
                                      f"{rho:.2f} with the trained model's map (a pass needs at most {threshold:g} "
                                      f"and at most the noise floor + {margin:g}). {why} It cannot be trusted "
                                      "to show what this model uses.")
    return Verdict(metric, PASSES, f"With every block re-initialised, its map's rank correlation with the trained "
                                   f"model's map fell to {rho:.2f} (two independently randomised models: "
                                   f"{floor_text}): the map depends on what the model learned.")


def sanity_check(
    model: nn.Module,
    x: torch.Tensor,
    methods: Sequence[str],
    target: int | None = None,
    layer: str | None = None,
    *,
    seed: int = 0,
    absolute: bool = True,
    threshold: float = THRESHOLD,
    margin: float = MARGIN,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    functions: Mapping[str, MapFunction] | None = None,
    trained: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Sanity]:
    """Each method's (and map function's) :class:`Sanity` at full randomisation, two copies of seeds
    ``seed`` and ``seed + 1000`` (the first equals the cascade's deepest step with the same seed).

    Arguments as :func:`randomisation_cascade`; ``trained``: maps of the trained model already
    computed (with the same target, layer and options), not recomputed; ``progress(done, 3)``
    after the trained model's maps and after each randomised copy's.
    """
    groups, target, layer, functions = _prepare(model, x, methods, functions, target, layer)
    given = {m: np.asarray(v, dtype=np.float64) for m, v in (trained or {}).items() if m in methods}
    computed = given | _maps(model, x, [m for m in methods if m not in given], functions, target, layer, options)
    original = {m: computed[m] for m in [*methods, *functions]}
    if progress is not None:
        progress(1, 3)
    randomised = []
    for copy_seed in (seed, seed + SECOND_SEED):
        twin, modules = _copy(model)
        for d, group in enumerate(groups):
            _randomise(modules, group, copy_seed + d)
        randomised.append(_maps(twin, x, methods, functions, target, layer, options))
        del twin, modules
        if progress is not None:
            progress(1 + len(randomised), 3)
    out = {}
    for name, heat in original.items():
        a, b = randomised[0][name], randomised[1][name]
        rhos = (spearman(heat, a, absolute), spearman(heat, b, absolute))
        rho, floor = changed_rho(rhos), abs(spearman(a, b, absolute))
        out[name] = Sanity(rho, rhos, floor, sanity_verdict(rho, floor, bool(np.ptp(heat) > 0), threshold, margin))
    return out
