"""Integrated Gradients' convergence: the completeness gap against the number of steps.

IG satisfies completeness, sum(attr) = f(x) - f(x') (Sundararajan et al. 2017, prop. 1), so
the quadrature's error shows as ``delta = sum(attr) - (f(x) - f(x'))``. Reported per step count
as |delta| and as |delta| / |f(x) - f(x')| (with ``f(x) - f(x') = sum(attr) - delta``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

import explainers
from explainers.errors import ExplainerError

STEPS = (8, 16, 32, 64, 128)


@dataclass
class Convergence:
    """``steps`` (n,), ``delta`` (n,) signed completeness gap, ``relative`` (n,) |delta| / |gap|."""

    steps: list[int]
    delta: np.ndarray
    relative: np.ndarray


def convergence(run: Callable[[int], tuple[float, float]], steps: Sequence[int],
                progress: Callable[[int, int], None] | None = None) -> Convergence:
    """``run(n) -> (delta, sum of attributions)`` at each step count; ``progress(done, len(steps))``."""
    counts = sorted({int(n) for n in steps})
    if not counts or counts[0] < 1:
        raise ExplainerError("Give at least one step count >= 1.")
    deltas, gaps = [], []
    for done, n in enumerate(counts, 1):
        delta, total = run(n)
        deltas.append(delta)
        gaps.append(total - delta)
        if progress is not None:
            progress(done, len(counts))
    delta = np.asarray(deltas, dtype=np.float64)
    return Convergence(counts, delta, np.abs(delta) / np.maximum(np.abs(gaps), 1e-12))


def image_ig_convergence(model: nn.Module, x: torch.Tensor, target: int | None = None, steps: Sequence[int] = STEPS,
                         progress: Callable[[int, int], None] | None = None, **options: Any) -> Convergence:
    """IG (:func:`explainers.explain`, ``options`` passed on: rule, baseline, score...) on one image,
    at each fixed step count (``tolerance`` 0 unless given: the study is of the fixed rule)."""
    if x.shape[0] != 1:
        raise ExplainerError("IG convergence runs on one image at a time.")

    def run(n: int) -> tuple[float, float]:
        attribution = explainers.explain(model, x, "integrated_gradients", target, steps=n, **{"tolerance": 0, **options})
        return float(attribution.extras["delta"][0]), float(attribution.pixel.sum())

    return convergence(run, steps, progress)


def text_ig_convergence(model: nn.Module, tokenizer: Any, text: Any, target: int | None = None,
                        steps: Sequence[int] = STEPS, progress: Callable[[int, int], None] | None = None,
                        **options: Any) -> Convergence:
    """Text IG (:func:`explainers.explain_text`, ``n_steps``) on one text or PreparedText."""
    prepared = text if isinstance(text, explainers.PreparedText) else explainers.prepare_text(model, tokenizer, text)

    def run(n: int) -> tuple[float, float]:
        attribution = explainers.explain_text(model, tokenizer, prepared, "integrated_gradients", target,
                                              n_steps=n, **options)
        return float(attribution.extras["delta"]), float(attribution.scores.sum())

    return convergence(run, steps, progress)
