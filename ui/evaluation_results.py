"""Evaluation results for the Evaluate page, computed once per input and options (``st.session_state``).

Every computation holds the shared model's lock while it runs the model (the randomisation
check copies the model under the lock and never changes the cached one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import streamlit as st
import torch

import evaluation
import explainers
from evaluation.faithfulness import FaithfulnessScore
from evaluation.methods import image_maps
from ui.resources import Shared

Progress = Callable[[int, int], None] | None


def _cached(kind: str, key: tuple, compute: Callable[[], Any]) -> Any:
    store = st.session_state.setdefault("evaluation_results", {})
    if (kind, key) not in store:
        store[kind, key] = compute()
    return store[kind, key]


def maps(shared: Shared, x: torch.Tensor, context: tuple, methods: Sequence[str], target: int) -> dict[str, np.ndarray]:
    """Each method's (H, W) map at default options (noise seed 0) for ``target``."""
    def compute() -> dict[str, np.ndarray]:
        options = {m: {"seed": 0} for m in methods if "seed" in explainers.method(m).options}
        for m in methods:  # as the Images page: adaptive paths of at most 400 passes
            if "max_steps" in explainers.method(m).options:
                options.setdefault(m, {})["max_steps"] = 400
        with shared.lock:
            found = image_maps(shared.model.net, x, methods, target, shared.model.default_layer,
                               {m: o for m, o in options.items() if m in methods})
        return {m: v.numpy() for m, v in found.items()}
    return _cached("maps", (*context, tuple(methods), target), compute)


def faithfulness(shared: Shared, x: torch.Tensor, context: tuple, heats: dict[str, np.ndarray], target: int,
                 options: dict, progress: Progress = None) -> dict[str, FaithfulnessScore]:
    """:func:`evaluation.score_maps` for every map, one batched run (floor included)."""
    def compute():
        with shared.lock:
            return evaluation.score_maps(shared.model.net, x, heats, target, progress=progress, **options)
    return _cached("faithfulness", (*context, tuple(heats), target, tuple(sorted(options.items()))), compute)


def cascade(shared: Shared, x: torch.Tensor, context: tuple, methods: Sequence[str], target: int, depth: int,
            progress: Progress = None) -> evaluation.Cascade:
    def compute():
        with shared.lock:
            return evaluation.randomisation_cascade(shared.model.net, x, methods, target, shared.model.default_layer,
                                                    depth=depth, progress=progress)
    return _cached("cascade", (*context, tuple(methods), target, depth), compute)


def ig_convergence(shared: Shared, x: torch.Tensor, context: tuple, target: int, steps: Sequence[int],
                   progress: Progress = None) -> evaluation.Convergence:
    def compute():
        with shared.lock:
            return evaluation.image_ig_convergence(shared.model.net, x, target, steps, progress)
    return _cached("convergence", (*context, target, tuple(steps)), compute)


def score_caption(score: FaithfulnessScore) -> str:
    """One line for under a map: deletion/insertion AUC beside the floor, and a badge when no better."""
    badge = (":red-badge[:material/warning: no better than random]" if score.no_better_than_random
             else ":green-badge[beats random]")
    return (f"deletion AUC {score.deletion_auc:.3f} (random {score.random_deletion_auc:.3f}) · "
            f"insertion AUC {score.insertion_auc:.3f} (random {score.random_insertion_auc:.3f}) {badge}")


def group_labels(shared: Shared, x: torch.Tensor, context: tuple) -> list[str]:
    """The randomisation groups' labels, top first (one probe forward, cached)."""
    def compute():
        with shared.lock:
            return [g.label for g in evaluation.randomisation_groups(shared.model.net, x)]
    return _cached("groups", context[:1], compute)


def predictions(shared: Shared, x: torch.Tensor, context: tuple) -> np.ndarray:
    def compute():
        with shared.lock, torch.inference_mode():
            return shared.model.net(x).softmax(-1)[0].numpy()
    return _cached("predictions", context, compute)
