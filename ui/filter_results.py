"""Feature maps and optimised images for the Filters page, computed once and kept in the session.

Feature maps are keyed by (model, image, layer, sort, target); optimised images by (model, layer,
unit, options) one unit at a time (a unit's image does not depend on the batch it ran in, see
:mod:`explainers.activation_max`), so adding a channel optimises only that channel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
import torch

import explainers
from explainers.activation_max import normalised
from ui.resources import Shared

KEEP_MAPS = 8
"""Feature-map results kept per session (early layers are large: 16x112x112 floats and more)."""


@dataclass
class UnitImage:
    """One unit's optimised image (uint8 H x W x 3), its activation and a noise image's, for comparison."""

    image: np.ndarray
    activation: float
    noise: float
    seconds: float


def filter_runs() -> int:
    """Model runs (feature maps or optimisation batches) made for this session so far."""
    return st.session_state.get("filter_runs", 0)


def _count_run() -> None:
    st.session_state["filter_runs"] = filter_runs() + 1


def cached_feature_maps(shared: Shared, x: torch.Tensor, context: tuple, layer: str, sort: str,
                        target: int | None) -> explainers.FeatureMaps:
    """:func:`explainers.feature_maps` for the image, from the session cache or computed now."""
    store: dict = st.session_state.setdefault("filter_maps", {})
    key = (*context, layer, sort, target if sort == "grad_cam" else None)
    if key not in store:
        _count_run()
        with shared.lock:
            store[key] = explainers.feature_maps(shared.model.net, x, layer, sort, target)
        while len(store) > KEEP_MAPS:
            store.pop(next(iter(store)))
    return store[key]


def unit_key(shared: Shared, layer: str | None, unit: int, options: dict[str, Any]) -> tuple:
    model = shared.model
    return (model.name, model.description, layer, unit, tuple(sorted(options.items())))


def optimised_units(
    shared: Shared,
    layer: str | None,
    units: Sequence[int],
    options: dict[str, Any],
    progress: Callable[[int, int], None] | None = None,
    compute: bool = True,
) -> dict[int, UnitImage]:
    """Optimised images for ``units`` (channels of ``layer``; classes if None) from the session
    cache; with ``compute`` the missing ones are optimised now, together in one batch."""
    store: dict = st.session_state.setdefault("filter_units", {})
    out = {u: store[unit_key(shared, layer, u, options)] for u in units if unit_key(shared, layer, u, options) in store}
    missing = [u for u in units if u not in out]
    if missing and compute:
        model = shared.model
        norm = model.normalisation
        _count_run()
        started = time.perf_counter()
        with shared.lock:
            result = explainers.maximise_activation(
                model.net, layer, missing, mean=norm.mean, std=norm.std, progress=progress, **options
            )
            noise = torch.rand((1, 3, *result.images.shape[2:]), generator=torch.Generator().manual_seed(options["seed"]))
            baseline = explainers.unit_activations(
                model.net, layer, normalised(noise, norm.mean, norm.std), missing, options["pre_activation"]
            )[0]
        seconds = (time.perf_counter() - started) / len(missing)
        images = (result.images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        for i, unit in enumerate(missing):
            out[unit] = store[unit_key(shared, layer, unit, options)] = UnitImage(
                images[i], float(result.activation[i]), float(baseline[i]), seconds
            )
    return out
