"""Maps of several image methods for one image and one target, the CAM family in one shared pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

import explainers
from evaluation.controls import Grid


def image_attributions(
    model: nn.Module,
    x: torch.Tensor,
    methods: Sequence[str],
    target: int,
    layer: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, explainers.Attribution]:
    """``{method: Attribution}`` for the image ``x`` (1, C, H, W) and class ``target``.

    The methods that read the shared layer pass (their records say so) and have no options go to
    one :func:`explainers.explain_many` call; every other method (or one with options) runs
    :func:`explainers.explain` with ``options[method]``. ``layer`` is used by the CAM family only.
    """
    options = options or {}
    shared = [m for m in methods if not options.get(m) and explainers.method(m).shares_layer_pass]
    out: dict[str, explainers.Attribution] = {}
    if shared:
        many = explainers.explain_many(model, x, shared, [target], layer)
        out |= {m: many[m][0] for m in shared}
    for method in methods:
        if method not in out:
            chosen_layer = layer if explainers.method(method).needs_layer else None
            out[method] = explainers.explain(model, x, method, target, chosen_layer, **options.get(method, {}))
    return {m: out[m] for m in methods}


def image_maps(
    model: nn.Module,
    x: torch.Tensor,
    methods: Sequence[str],
    target: int,
    layer: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, torch.Tensor]:
    """``{method: (H, W) map}``: :func:`image_attributions`' first maps."""
    return {m: a.maps[0] for m, a in image_attributions(model, x, methods, target, layer, options).items()}


def native_grid(attribution: explainers.Attribution) -> Grid:
    """The resolution a method computed its map at: a CAM's layer grid (``raw``), else pixels (None)."""
    raw = attribution.raw
    return None if raw is None or tuple(raw.shape[-2:]) == tuple(attribution.maps.shape[-2:]) else tuple(raw.shape[-2:])
