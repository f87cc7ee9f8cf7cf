"""Method agreement: Spearman's rho and top-k overlap between every pair of maps of one input."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from evaluation.ranking import spearman, top_k_overlap
from explainers.errors import ExplainerError

TOP_FRACTION = 0.1


@dataclass
class Agreement:
    """Symmetric (M, M) matrices over ``names``: rank correlation and top-k IoU (diagonal 1)."""

    names: list[str]
    spearman: np.ndarray
    top_k_iou: np.ndarray
    top_fraction: float
    absolute: bool


def agreement(maps: Mapping[str, Any], top_fraction: float = TOP_FRACTION, absolute: bool = True) -> Agreement:
    """Compare every pair of ``maps`` (same shape): Spearman's rho of their values and the IoU of
    their top ``top_fraction`` (default 10%) units. ``absolute``: compare magnitudes |map| (default),
    so signed and unsigned methods are ranked alike. A constant map gives NaN correlations."""
    names = list(maps)
    if len(names) < 2:
        raise ExplainerError("Agreement needs at least two maps.")
    rho, iou = np.eye(len(names)), np.eye(len(names))
    for i, j in combinations(range(len(names)), 2):
        a, b = maps[names[i]], maps[names[j]]
        rho[i, j] = rho[j, i] = spearman(a, b, absolute)
        iou[i, j] = iou[j, i] = top_k_overlap(a, b, top_fraction, absolute)
    return Agreement(names, rho, iou, top_fraction, absolute)
