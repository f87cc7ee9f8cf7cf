"""Rank statistics between two maps: Spearman's rho (ties averaged) and top-k overlap.

Maps are compared as flat vectors of the same size. With ``absolute=True`` (the default in
this package) magnitudes are compared, so a signed method (Integrated Gradients) and an
unsigned one (Grad-CAM) are ranked on the same footing: how strongly each pixel matters.
"""

from __future__ import annotations

import numpy as np
import torch

from explainers.errors import ExplainerError

ArrayLike = np.ndarray | torch.Tensor


def as_vector(values: ArrayLike, absolute: bool = False) -> np.ndarray:
    """``values`` flattened to float64 numpy (``|values|`` if ``absolute``); refuses NaN/inf."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    flat = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(flat).all():
        raise ExplainerError("A map contains NaN or infinite values; it cannot be ranked.")
    return np.abs(flat) if absolute else flat


def _pair(a: ArrayLike, b: ArrayLike, absolute: bool) -> tuple[np.ndarray, np.ndarray]:
    u, v = as_vector(a, absolute), as_vector(b, absolute)
    if u.size != v.size or u.size < 2:
        raise ExplainerError(f"Maps must have the same size (>= 2 values) to be compared; got {u.size} and {v.size}.")
    return u, v


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of a 1-D array, tied values sharing the mean of their ranks (scipy's ``rankdata - 1``)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    ends = np.r_[starts[1:], values.size]
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = ((starts + ends - 1) / 2)[group]
    return ranks


def spearman(a: ArrayLike, b: ArrayLike, absolute: bool = False) -> float:
    """Spearman's rank correlation: Pearson's r of the average ranks (Spearman 1904).

    NaN when either map is constant (no ranking to compare: a map that became flat).
    """
    u, v = _pair(a, b, absolute)
    ru, rv = average_ranks(u), average_ranks(v)
    ru -= ru.mean()
    rv -= rv.mean()
    denominator = np.sqrt((ru * ru).sum() * (rv * rv).sum())
    return float((ru * rv).sum() / denominator) if denominator > 0 else float("nan")


def top_k_mask(values: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the ``ceil(fraction * n)`` largest values; ties go to the lower index."""
    if not 0 < fraction <= 1:
        raise ExplainerError(f"The top-k fraction must be in (0, 1], got {fraction}.")
    k = max(1, int(np.ceil(fraction * values.size)))
    mask = np.zeros(values.size, dtype=bool)
    mask[np.argsort(-values, kind="stable")[:k]] = True
    return mask


def top_k_overlap(a: ArrayLike, b: ArrayLike, fraction: float = 0.1, absolute: bool = False) -> float:
    """Intersection over union of the two maps' top ``fraction`` of values (|A n B| / |A u B|)."""
    u, v = _pair(a, b, absolute)
    ma, mb = top_k_mask(u, fraction), top_k_mask(v, fraction)
    return float((ma & mb).sum() / (ma | mb).sum())
