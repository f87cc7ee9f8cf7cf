"""Image maps for the Images page, computed once per (model, image, target, layer, method, options).

Results live in ``st.session_state`` so a display change (opacity, colours, layout) reruns no
model pass. The methods that read the shared layer pass (their records say so) come from one
``explainers.explain_many`` call for every target; noisy methods asked for with the same noise
(SmoothGrad, VarGrad, Smooth Grad-CAM++) share one set of noisy passes per target; the other slow
ones run one at a time with a progress bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st
import torch

import explainers
from evaluation.faithfulness import FaithfulnessScore
from explainers.api import NOISE_OPTIONS
from explainers.errors import ExplainerError
from figures.scales import MapKind
from ui.evaluation_results import score_image_maps
from ui.methods import in_shared_pass, uses_layer
from ui.methods import slow as is_slow
from ui.resources import Shared


@dataclass
class MapResult:
    """One computed map (or the reason it could not be), with the facts shown under it."""

    variant: str
    target: int
    layer: str | None
    heat: np.ndarray | None = None
    raw: np.ndarray | None = None
    seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    faithfulness: FaithfulnessScore | None = None

    @property
    def delta_ratio(self) -> float | None:
        """IG's |convergence delta| as a fraction of |f(x) - f(baseline)|, if known."""
        if "delta" not in self.extras:
            return None
        gap = self.extras["score"] - self.extras["baseline_score"]
        return abs(self.extras["delta"]) / max(abs(gap), 1e-12)


def _store() -> dict[tuple, MapResult]:
    return st.session_state.setdefault("image_maps", {})


def _count_run() -> None:
    """One more explainer call in this session (shown on the page, read by the browser test)."""
    st.session_state["explainer_runs"] = explainer_runs() + 1


def explainer_runs() -> int:
    """Explainer calls (each one or more model passes) made for this session so far."""
    return st.session_state.get("explainer_runs", 0)


def result_key(context: tuple, variant: str, target: int, layer: str | None, options: dict) -> tuple:
    """Cache key: (model, image), method, target, layer (CAM family only) and options."""
    return (*context, variant, target, layer if uses_layer(variant) else None, tuple(sorted(options.items())))


def _to_result(variant: str, attribution: explainers.Attribution, seconds: float,
               forwards: int | None = None) -> MapResult:
    # Keep the per-item numbers (IG's delta and scores, the noise seed); drop tensors like the baseline.
    extras = {
        k: float(v[0]) if isinstance(v, torch.Tensor) else v
        for k, v in attribution.extras.items()
        if not isinstance(v, torch.Tensor) or v.ndim == 1
    }
    if attribution.options.get("precision", "float32") != "float32":
        extras["precision"] = attribution.options["precision"]  # fast mode, labelled under the map
    heat = attribution.maps[0].numpy()
    if not np.any(heat):
        extras["all_zero"] = True  # any method's blank map (a CAM's ReLU of all-negative evidence too)
    _seconds_store()[variant] = (seconds, forwards)
    return MapResult(
        variant=variant,
        target=attribution.targets[0],
        layer=attribution.layer,
        heat=heat,
        raw=None if attribution.raw is None else attribution.raw[0].numpy(),
        seconds=seconds,
        extras=extras,
    )


def missing_maps(context: tuple, variants: Sequence[str], targets: Sequence[int], layer: str,
                 options: dict[str, dict[str, Any]], slow: bool = True) -> list[tuple[str, int]]:
    """The (variant, target) pairs of the slow (or fast) variants not yet in the session cache."""
    store = _store()
    return [(v, t) for v in variants if is_slow(v) == slow for t in targets
            if result_key(context, v, t, layer, options.get(v, {})) not in store]


def cached_maps(context: tuple, variants: Sequence[str], targets: Sequence[int], layer: str,
                options: dict[str, dict[str, Any]]) -> dict[tuple[str, int], MapResult]:
    """The maps of ``variants`` x ``targets`` already in the session cache (slow ones included)."""
    store = _store()
    keys = {(v, t): result_key(context, v, t, layer, options.get(v, {})) for v in variants for t in targets}
    return {vt: store[k] for vt, k in keys.items() if k in store}


def _seconds_store() -> dict[str, tuple[float, int | None]]:
    """Each method's last map in this session: (seconds, the forwards it counted, if it counts them)."""
    return st.session_state.setdefault("image_map_seconds", {})


def counted_forwards(variant: str, shape: tuple[int, ...], options: dict[str, Any]) -> int | None:
    """``Method.forwards`` of ``variant`` for an input of ``shape`` under ``options`` (None: not counted)."""
    return explainers.method(variant).forwards(shape, options)


def estimate_seconds(todo: Sequence[tuple[str, int]], x: torch.Tensor, options: dict[str, dict[str, Any]],
                     forward_seconds: float) -> float | None:
    """Seconds the maps ``todo`` should take.

    A method that counts its forwards (``Method.forwards``): forwards now x its seconds per forward
    as last measured in this session (batched and incremental forwards cost less than one whole
    forward: occlusion's incremental windows about 0.4x), else x one forward's time. A method that
    does not: its last measured seconds per map. None when neither is known for some method.
    """
    seen, total = _seconds_store(), 0.0
    for variant, _ in todo:
        forwards = counted_forwards(variant, tuple(x.shape), options.get(variant, {}))
        seconds, then = seen.get(variant, (None, None))
        if forwards is not None and then:
            total += seconds * forwards / then
        elif forwards is not None:
            total += forwards * forward_seconds
        elif seconds is not None:
            total += seconds
        else:
            return None
    return total


def seconds_left(pending: Sequence[tuple[str, int]], x: torch.Tensor, options: dict[str, dict[str, Any]],
                 forward_seconds: float, running: tuple[tuple[str, ...], int, float, int, int] | None = None,
                 ) -> float | None:
    """Seconds until the maps ``pending`` (variant, target) are done, None when some cost is unknown.

    ``running`` = (variants, target, seconds run, passes done, passes in all) of the pass under way (one
    method, or a noisy group computed together): its own pace, ``seconds x all / done``, gives its time
    left and the time of its variants' other targets (same options, same input); every other map comes
    from :func:`estimate_seconds`. Without a pass under way, the estimate for ``pending``.
    """
    if running is None or running[3] <= 0:
        return estimate_seconds(pending, x, options, forward_seconds)
    variants, target, elapsed, done, of = running
    per_pass = elapsed * max(of, done) / done
    others = [t for t in pending if not (t[0] in variants and t[1] == target)]
    rest = estimate_seconds([t for t in others if t[0] not in variants], x, options, forward_seconds)
    if rest is None:
        return None
    again = {t for v, t in others if v in variants}
    return max(per_pass - elapsed, 0.0) + len(again) * per_pass + rest


def compute_maps(
    shared: Shared,
    x: torch.Tensor,
    context: tuple,
    variants: Sequence[str],
    targets: Sequence[int],
    layer: str,
    options: dict[str, dict[str, Any]],
    progress: Callable[[str, int, int, int], None] | None = None,
    slow: bool = False,
    on_result: Callable[[MapResult], None] | None = None,
) -> dict[tuple[str, int], MapResult]:
    """Maps for every (variant, target), from the session cache or computed now.

    ``slow=False`` computes only the fast variants (so they can be shown first); ``slow=True``
    the rest. ``progress(label, target, done, total)`` reports the slow methods' steps;
    ``on_result(result)`` is called as each map computed one at a time finishes.
    """
    store = _store()
    out: dict[tuple[str, int], MapResult] = {}
    todo: list[tuple[str, int, tuple]] = []
    for variant in variants:
        if is_slow(variant) != slow:
            continue
        for target in targets:
            key = result_key(context, variant, target, layer, options.get(variant, {}))
            if key in store:
                out[variant, target] = store[key]
            else:
                todo.append((variant, target, key))

    shared_todo = [v for v in dict.fromkeys(t[0] for t in todo) if in_shared_pass(v) and not options.get(v)]
    if shared_todo:
        started = time.perf_counter()
        _count_run()
        try:
            with shared.lock:
                many = explainers.explain_many(shared.model.net, x, shared_todo, list(targets), layer)
        except ExplainerError:
            many = {}  # one method refused (e.g. CAM without a GAP head): run each alone below
        seconds = (time.perf_counter() - started) / len(shared_todo) / len(targets)
        for variant, attributions in many.items():
            for target, attribution in zip(targets, attributions):
                out[variant, target] = _to_result(variant, attribution, seconds)

    groups = noisy_groups(list(dict.fromkeys(t[0] for t in todo)), options)
    for variant, target, key in todo:
        if variant in groups and (variant, target) not in out:
            out.update(_noisy_together(shared, x, groups[variant], target, layer, options, progress))
        if (variant, target) in out:
            store[key] = out[variant, target]
            if on_result is not None and variant in groups:
                on_result(out[variant, target])
            continue
        chosen = dict(options.get(variant, {}))
        record = explainers.method(variant)
        if progress is not None and record.slow and "progress" in record.options:
            chosen["progress"] = lambda done, total, v=record.label, t=target: progress(v, t, done, total)
        started = time.perf_counter()
        _count_run()
        try:
            with shared.lock:
                attribution = explainers.explain(shared.model.net, x, variant, target, layer, **chosen)
            out[variant, target] = _to_result(variant, attribution, time.perf_counter() - started,
                                              counted_forwards(variant, tuple(x.shape), options.get(variant, {})))
        except ExplainerError as err:
            out[variant, target] = MapResult(variant, target, layer, error=str(err))
        store[key] = out[variant, target]
        if on_result is not None:
            on_result(out[variant, target])
    return out


def noisy_groups(variants: Sequence[str], options: dict[str, dict[str, Any]]) -> dict[str, tuple[str, ...]]:
    """Each noisy variant that can share its noisy passes, mapped to its group: two or more noisy
    methods in float32 whose options agree on every name they share (so one set of options serves all)."""
    by_noise: dict[tuple, list[str]] = {}
    for v in variants:
        opts = options.get(v, {})
        if explainers.method(v).noisy and opts.get("precision", "float32") == "float32":
            by_noise.setdefault(tuple(sorted((k, opts[k]) for k in NOISE_OPTIONS if k in opts)), []).append(v)
    groups = {}
    for group in by_noise.values():
        merged: dict[str, Any] = {}
        agree = all(merged.setdefault(k, val) == val for v in group for k, val in options.get(v, {}).items())
        if len(group) > 1 and agree:
            groups.update(dict.fromkeys(group, tuple(group)))
    return groups


def _noisy_together(shared: Shared, x: torch.Tensor, group: tuple[str, ...], target: int, layer: str,
                    options: dict[str, dict[str, Any]], progress: Callable[[str, int, int, int], None] | None,
                    ) -> dict[tuple[str, int], MapResult]:
    """``group``'s maps for ``target`` from one set of noisy passes (``explainers.explain_many``);
    empty when it refuses (each method then runs alone and says why)."""
    chosen = {k: val for v in group for k, val in options.get(v, {}).items()}
    if progress is not None:
        label = " + ".join(explainers.method(v).label for v in group)
        chosen["progress"] = lambda done, total: progress(label, target, done, total)
    started = time.perf_counter()
    _count_run()
    try:
        with shared.lock:
            many = explainers.explain_many(shared.model.net, x, list(group), [target], layer, **chosen)
    except ExplainerError:
        return {}
    seconds = (time.perf_counter() - started) / len(group)
    return {(v, target): _to_result(v, many[v][0], seconds) for v in group}


def cached_predictions(shared: Shared, x: torch.Tensor, context: tuple) -> np.ndarray:
    """Class probabilities for the image, computed once per (model, image) in this session; the
    forward's time is kept for :func:`forward_seconds`."""
    store = st.session_state.setdefault("image_predictions", {})
    if context not in store:
        with shared.lock, torch.inference_mode():
            started = time.perf_counter()
            store[context] = shared.model.net(x).softmax(-1)[0].numpy()
            st.session_state["image_forward_seconds"] = time.perf_counter() - started
    return store[context]


def forward_seconds() -> float:
    """One forward of the image model as last measured in this session (0.05 s before any)."""
    return st.session_state.get("image_forward_seconds", 0.05)


def score_results(
    shared: Shared,
    x: torch.Tensor,
    results: dict[tuple[str, int], MapResult],
    targets: Sequence[int],
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Deletion/insertion AUC (Petsiuk et al. 2018) for every computed map, kept on its result.

    All maps of one target and the random floor share one batched evaluation; maps already
    scored are skipped, so a rerun of the page scores nothing again.
    """
    for target in targets:
        todo = {v: r for (v, t), r in results.items() if t == target and r.heat is not None and r.faithfulness is None}
        if not todo:
            continue
        _count_run()
        scores = score_image_maps(shared, x, {v: r.heat for v, r in todo.items()}, {v: r.raw for v, r in todo.items()},
                                  target, progress)  # each map against random maps at its own grid
        for variant, result in todo.items():
            result.faithfulness = scores[variant]


def map_kinds(variants: Sequence[str]) -> list[MapKind]:
    """What each method's maps are (sign, family, evidence against), from its registry record."""
    records = [explainers.method(v) for v in variants]
    return [MapKind(signed=r.signed, family=r.family, against=r.evidence_against) for r in records]


LAST_IMAGES = "last_images_choice"
"""Plain session key (kept across pages): the Images page's latest sample, methods and targets."""
