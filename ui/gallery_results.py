"""Gallery maps in batches, kept in the Images page's cache, and per-image disagreement between methods.

Maps go into the same store and under the same keys as :func:`ui.image_results.compute_maps`
(context ``(model name, description, "upload:<sha256>" | "sample:<name>")``), so a photo opened
later on the Images page reuses them, and the other way round. Deterministic methods run on
batches of images (``explainers.explain_many`` / ``explain`` on (B, 3, H, W) with one target per
item); noisy ones (SmoothGrad, Smooth Grad-CAM++, IG with a random baseline) run one image at
a time with their seed, so every map equals the one computed for that image alone.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import explainers
from evaluation.agreement import rank_agreement
from explainers.errors import ExplainerError
from ui.image_results import MapResult, _to_result, result_key
from ui.methods import in_shared_pass, label


@dataclass
class Item:
    """One gallery image ready for the model: its name, cache context, pixels and input tensor."""

    name: str
    context: tuple
    rgb: np.ndarray
    x: torch.Tensor


def _per_item(variant: str, options: dict[str, Any]) -> bool:
    return "noise_level" in explainers.method(variant).options or options.get("baseline") == "uniform"


def _slice(a: explainers.Attribution, i: int) -> explainers.Attribution:
    """Item ``i`` of a batch Attribution, as if it had been computed alone (batch tensors sliced)."""
    n = a.maps.shape[0]

    def pick(v: Any) -> Any:
        return v[i : i + 1] if isinstance(v, torch.Tensor) and v.ndim >= 1 and v.shape[0] == n else v

    return explainers.Attribution(a.maps[i : i + 1], [a.targets[i]], a.method, a.layer, a.options, pick(a.raw),
                                  pick(a.pixel), {k: pick(v) for k, v in a.extras.items()})


def _run(net, x: torch.Tensor, variant: str, targets: list[int], layer: str, options: dict) -> list[explainers.Attribution]:
    a = explainers.explain(net, x, variant, targets, layer, **options)
    return [_slice(a, i) for i in range(x.shape[0])]


def gallery_maps(
    shared,
    items: Sequence[Item],
    targets: Sequence[int],
    variants: Sequence[str],
    layer: str,
    options: dict[str, dict[str, Any]],
    store: dict,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, MapResult]]:
    """``result[i][variant]`` for every item (its target ``targets[i]``), from ``store`` or computed now.

    ``store`` is the Images page's session store (``st.session_state["image_maps"]``) or any dict.
    ``progress(done, total)`` is called after each batch / noisy item. A method that refuses
    (e.g. CAM on a model without a pooled linear head) gives MapResults with ``error`` set.
    """
    keys = [{v: result_key(item.context, v, t, layer, options.get(v, {})) for v in variants}
            for item, t in zip(items, targets)]
    todo = [i for i in range(len(items)) if any(k not in store for k in keys[i].values())]
    total, done = max(len(todo), 1), 0
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        x = torch.cat([items[i].x for i in batch])
        chosen = [targets[i] for i in batch]
        missing = [v for v in variants if any(keys[i][v] not in store for i in batch)]
        shared_pass = [v for v in missing if in_shared_pass(v) and not options.get(v)]
        groups = ([shared_pass] if shared_pass else []) + [[v] for v in missing if v not in shared_pass]
        while groups:
            group = groups.pop(0)
            variant = group[0]
            opts = options.get(variant, {})
            started = time.perf_counter()
            try:
                with shared.lock:
                    if len(group) > 1 or variant in shared_pass:
                        many = explainers.explain_many(shared.model.net, x, group, [chosen], layer)
                        found = {v: [_slice(many[v][0], i) for i in range(len(batch))] for v in group}
                    elif _per_item(variant, opts):
                        found = {variant: [_run(shared.model.net, items[i].x, variant, [targets[i]], layer, opts)[0]
                                           for i in batch]}
                    else:
                        found = {variant: _run(shared.model.net, x, variant, chosen, layer, opts)}
                seconds = (time.perf_counter() - started) / len(batch) / len(group)
                for v, attributions in found.items():
                    for i, a in zip(batch, attributions):
                        store.setdefault(keys[i][v], _to_result(v, a, seconds))
            except ExplainerError as err:
                if len(group) > 1:  # one method of the shared pass refused (e.g. CAM on a ViT): each alone
                    groups[:0] = [[v] for v in group]
                    continue
                for v in group:
                    for i in batch:
                        store.setdefault(keys[i][v], MapResult(v, targets[i], layer, error=str(err)))
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return [{v: store[keys[i][v]] for v in variants} for i in range(len(items))]


def spearman(a: np.ndarray, b: np.ndarray, both_signed: bool = False) -> float:
    """The project's one agreement between two maps (:func:`evaluation.agreement.rank_agreement`):
    Spearman's rho of |maps|, or of signed maps when both are signed; NaN if one is constant."""
    return rank_agreement(a, b, both_signed)


def _record(variant: str) -> explainers.registry.Method | None:
    try:
        return explainers.method(variant)
    except ExplainerError:
        return None


def disagreement(results: dict[str, MapResult]) -> tuple[float, str]:
    """1 - mean pairwise agreement (:func:`spearman`) between the computed maps of one image, and its
    least-agreeing pair; a method's own negative map (its record says ``evidence_against``) is left out."""
    records = {v: _record(v) for v in results}
    maps = {v: r.heat for v, r in results.items()
            if r.heat is not None and not (records[v] is not None and records[v].evidence_against)}
    signed = {v for v in maps if records[v] is not None and records[v].signed}
    pairs = [(spearman(maps[a], maps[b], a in signed and b in signed), a, b) for a, b in itertools.combinations(maps, 2)]
    pairs = [p for p in pairs if np.isfinite(p[0])]
    if not pairs:
        return float("nan"), ""
    rho, a, b = min(pairs)
    return 1.0 - float(np.mean([p[0] for p in pairs])), f"{label(a)} vs {label(b)} ({rho:+.2f})"
