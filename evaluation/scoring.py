"""Score methods by name: their maps, the controls, deletion/insertion and ROAD, one floor per grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

import explainers
from evaluation.controls import Grid, control_maps
from evaluation.faithfulness import FaithfulnessScore, score_maps
from evaluation.methods import image_attributions, native_grid
from evaluation.road import RoadScore, road_scores
from explainers.engine import predict


@dataclass
class Scored:
    """Per map name (methods, then the controls): ``maps`` (H, W), ``grids``, ``faithfulness``,
    ``road`` (empty if not asked)."""

    target: int
    maps: dict[str, np.ndarray]
    grids: dict[str, Grid]
    faithfulness: dict[str, FaithfulnessScore]
    road: dict[str, RoadScore] = field(default_factory=dict)


def score_methods(
    model: nn.Module,
    x: torch.Tensor,
    methods: Sequence[str],
    target: int | None = None,
    *,
    layer: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    controls: bool = True,
    road: bool = True,
    faithfulness_options: Mapping[str, Any] | None = None,
    road_options: Mapping[str, Any] | None = None,
) -> Scored:
    """Maps of ``methods`` (:func:`evaluation.methods.image_attributions`, ``options[method]``) and,
    with ``controls``, the Sobel and centred-Gaussian maps, scored by :func:`evaluation.score_maps`
    (``faithfulness_options``) and, with ``road``, :func:`evaluation.road_scores` (``road_options``);
    each map's floor is drawn at its own grid. ``target``: None = the predicted class."""
    target = int(predict(model, x).argmax()) if target is None else target
    found = image_attributions(model, x, methods, target, layer, options)
    maps: dict[str, Any] = {m: a.maps[0] for m, a in found.items()}
    grids = {m: native_grid(a) for m, a in found.items()}
    if controls:
        made = control_maps(x)
        maps |= made
        grids |= dict.fromkeys(made)
    against = [m for m in methods if explainers.method(m).evidence_against]
    common = {"grids": grids, "evidence_against": against}
    arrays = {m: np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64)
              for m, v in maps.items()}
    scored = Scored(target, arrays, grids, score_maps(model, x, maps, target, **common, **(faithfulness_options or {})))
    if road:
        scored.road = road_scores(model, x, maps, target, **common, **(road_options or {}))
    return scored
