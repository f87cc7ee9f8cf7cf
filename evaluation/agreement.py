"""Method agreement: one definition, used by the Evaluate page and the Gallery.

Two maps agree by Spearman's rank correlation of their magnitudes |map| (how strongly each
pixel matters), or of their signed values when *both* methods are signed (Integrated Gradients
vs input x gradient: direction matters too). The top-k overlap is the IoU of the two maps' top
``top_fraction`` units under the same rule. A map that is the same everywhere gives NaN.
:func:`disagreement` (batch jobs) is 1 - the mean of that rho over the pairs of methods.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

import explainers
from evaluation.ranking import ArrayLike, spearman, top_k_overlap
from explainers.errors import ExplainerError

TOP_FRACTION = 0.1


@dataclass
class Agreement:
    """Symmetric (M, M) matrices over ``names``: rank correlation and top-k IoU (diagonal 1)."""

    names: list[str]
    spearman: np.ndarray
    top_k_iou: np.ndarray
    top_fraction: float
    signed: frozenset[str]


def rank_agreement(a: ArrayLike, b: ArrayLike, both_signed: bool = False) -> float:
    """Spearman's rho of |a| and |b|, or of a and b when ``both_signed``."""
    return spearman(a, b, absolute=not both_signed)


def agreement(maps: Mapping[str, Any], signed: Collection[str] = (), top_fraction: float = TOP_FRACTION) -> Agreement:
    """Compare every pair of ``maps`` (same shape) by :func:`rank_agreement` and the IoU of their
    top ``top_fraction`` (default 10%) units; ``signed``: the names whose maps are signed."""
    names = list(maps)
    if len(names) < 2:
        raise ExplainerError("Agreement needs at least two maps.")
    signed = frozenset(signed) & set(names)
    rho, iou = np.eye(len(names)), np.eye(len(names))
    for i, j in combinations(range(len(names)), 2):
        a, b = maps[names[i]], maps[names[j]]
        both = names[i] in signed and names[j] in signed
        rho[i, j] = rho[j, i] = rank_agreement(a, b, both)
        iou[i, j] = iou[j, i] = top_k_overlap(a, b, top_fraction, absolute=not both)
    return Agreement(names, rho, iou, top_fraction, signed)


def disagreement(maps: Mapping[str, ArrayLike]) -> float | None:
    """1 - the mean :func:`rank_agreement` over the pairs of ``maps`` (keyed by method name) with a finite rho:
    each method's record says whether its map is signed, and a method's own negative map (its record says
    ``evidence_against``) is left out, as in the Gallery. None when no pair has a finite rho."""
    records = {name: explainers.method(name) for name in maps}
    kept = [name for name in maps if not records[name].evidence_against]
    rhos = [rank_agreement(maps[a], maps[b], records[a].signed and records[b].signed) for a, b in combinations(kept, 2)]
    rhos = [r for r in rhos if np.isfinite(r)]
    return 1.0 - float(np.mean(rhos)) if rhos else None
