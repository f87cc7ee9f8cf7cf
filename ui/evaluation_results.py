"""Evaluation results for the Evaluate page (and the Images page's badges), computed only when asked.

Everything is cached in the session per (model, image, target, method, metric, settings): adding a
method computes only that method, a display change or a tab change computes nothing. The random
floors are cached per (model, image, target, settings, grid) and reused by every method scored
against them. The Evaluate page's work runs in a background thread (:class:`Job`) that writes into
the session's store and counts its progress, so the page stays usable (other tabs, display
changes) while it runs; the thread never calls Streamlit. Every model computation holds the shared
model's lock (the randomisation check copies the model under it and never changes the cached one).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st
import torch

import evaluation
import explainers
from evaluation.controls import SOBEL, control_maps, sobel_map
from evaluation.faithfulness import FaithfulnessScore, score_maps
from evaluation.methods import image_attributions, native_grid
from evaluation.road import road_scores
from explainers.errors import ExplainerError
from ui.resources import Shared

log = logging.getLogger("dashboard")
Progress = Callable[[int, int], None] | None
PAGE_OPTIONS = {"seed": 0, "max_steps": 400}
"""As the Images page: noise seed 0, adaptive IG capped at 400 passes."""
CONTROLS = tuple(control_maps(torch.zeros(1, 1, 2, 2)))
METRICS = {"faithfulness": "Deletion / insertion", "road": "ROAD", "sanity": "Sanity check"}
PARTIAL = "faithfulness_without_floor"
"""Cache kind of deletion/insertion scores whose random floor is still being computed."""
BADGE_SETTINGS = {"steps": 10, "random_maps": 20}
"""The Images page's badges: k = 10 steps (2 x 9 + 3 rows a map), 20 random maps per floor."""


@dataclass
class MapEntry:
    """One method's map for one (image, target): the (H, W) map and its grid, or why there is none."""

    heat: np.ndarray | None = None
    grid: tuple[int, int] | None = None
    error: str | None = None


def store() -> dict:
    """The session's evaluation cache (a plain dict, so the background thread can write to it)."""
    return st.session_state.setdefault("evaluation_results", {})


def method_options(method: str) -> dict[str, Any]:
    return {k: v for k, v in PAGE_OPTIONS.items() if k in explainers.method(method).options}


def faithfulness_key(settings: dict) -> tuple:
    return tuple(sorted((k, settings[k]) for k in ("steps", "replacement", "random_maps")))


def road_key(settings: dict) -> tuple:
    return tuple(settings["percentiles"]), settings["random_maps"]


def missing(cache: dict, context: tuple, target: int, methods: Sequence[str], metrics: Sequence[str],
            settings: dict) -> dict[str, list[str]]:
    """Per stage ("maps" and each metric), the names (methods, then the controls) not yet computed."""
    names = [*methods, *CONTROLS]
    todo = {"maps": [m for m in methods if ("map", context, target, m) not in cache]}

    def ready(m: str) -> bool:  # a control, a map still to compute, or a map computed without an error
        return m in CONTROLS or m in todo["maps"] or cache[("map", context, target, m)].error is None

    if "faithfulness" in metrics:
        todo["faithfulness"] = [m for m in names if ready(m)
                                and ("faithfulness", context, target, m, faithfulness_key(settings)) not in cache]
    if "road" in metrics:
        todo["road"] = [m for m in names if ready(m) and ("road", context, target, m, road_key(settings)) not in cache]
    if "sanity" in metrics:
        todo["sanity"] = [m for m in [*methods, SOBEL] if ready(m)
                          and ("sanity", context, target, m, settings["seed"]) not in cache]
    return {k: v for k, v in todo.items() if v}


def heats(cache: dict, context: tuple, target: int, names: Sequence[str]) -> dict[str, MapEntry]:
    return {m: cache[("map", context, target, m)] for m in names if ("map", context, target, m) in cache}


@dataclass
class Job:
    """One background computation: its stages, counts and outcome, read by the page's progress bar."""

    request: tuple
    stages: list[str]
    stage: str = "starting"
    done: int = 0
    total: int = 0
    stages_done: int = 0
    updates: int = 0
    """Results written so far (a stage finished, or a stage's early part): the page redraws when it grows."""
    started: float = field(default_factory=time.perf_counter)
    first_result: float | None = None
    finished: float | None = None
    errors: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.finished is None

    def counter(self, what: str) -> Callable[[int, int], None]:
        def progress(done: int, total: int) -> None:
            self.stage, self.done, self.total = what, done, total
        return progress

    def result_arrived(self) -> None:
        if self.first_result is None:
            self.first_result = time.perf_counter()
        self.updates += 1


def _compute_maps(job: Job, cache: dict, shared: Shared, x: torch.Tensor, context: tuple, target: int,
                  methods: Sequence[str]) -> None:
    """Each missing method's map (the shared-pass ones together), errors kept per method."""
    layer = shared.model.default_layer
    shared_pass = [m for m in methods if explainers.method(m).shares_layer_pass and not method_options(m)]
    batches = ([shared_pass] if shared_pass else []) + [[m] for m in methods if m not in shared_pass]
    for i, batch in enumerate(batches):
        job.counter(f"maps ({', '.join(explainers.method(m).label for m in batch)})")(i, len(batches))
        try:
            with shared.lock:
                found = image_attributions(shared.model.net, x, batch, target, layer,
                                           {m: method_options(m) for m in batch})
            for m, a in found.items():
                cache["map", context, target, m] = MapEntry(a.maps[0].numpy(), native_grid(a))
        except ExplainerError as err:
            for m in batch:
                cache["map", context, target, m] = MapEntry(error=str(err))
    job.counter("maps")(len(batches), len(batches))


def _all_maps(cache: dict, context: tuple, target: int, x: torch.Tensor, names: Sequence[str]) -> dict[str, MapEntry]:
    made = {name: MapEntry(heat.numpy(), None) for name, heat in control_maps(x).items() if name in names}
    return heats(cache, context, target, [n for n in names if n not in made]) | made


def _score(job: Job, cache: dict, shared: Shared, x: torch.Tensor, context: tuple, target: int,
           names: Sequence[str], metric: str, settings: dict) -> None:
    """Deletion/insertion or ROAD of ``names``, the floors taken from (and added to) the cache."""
    entries = {m: e for m, e in _all_maps(cache, context, target, x, names).items() if e.heat is not None}
    if not entries:
        return
    key = faithfulness_key(settings) if metric == "faithfulness" else road_key(settings)
    grids = {m: e.grid for m, e in entries.items()}
    floors = {g: cache[(f"{metric}_floor", context, target, key, g)] for g in set(grids.values())
              if (f"{metric}_floor", context, target, key, g) in cache}
    against = [m for m in entries if m not in CONTROLS and explainers.method(m).evidence_against]
    progress = job.counter("deletion / insertion: images" if metric == "faithfulness" else "ROAD: images imputed")
    progress(0, 0)  # the stage shows at once; its counts follow after the first chunk
    common = dict(grids=grids, floors=floors, evidence_against=against, random_maps=settings["random_maps"],
                  progress=progress)

    def early(found: dict[str, FaithfulnessScore]) -> None:  # the maps' curves; their floors still to run
        for m, s in found.items():
            cache[PARTIAL, context, target, m, key] = s
        job.result_arrived()

    with shared.lock:
        if metric == "faithfulness":
            found = score_maps(shared.model.net, x, {m: e.heat for m, e in entries.items()}, target,
                               steps=settings["steps"], replacement=settings["replacement"], partial=early, **common)
        else:
            found = road_scores(shared.model.net, x, {m: e.heat for m, e in entries.items()}, target,
                                percentiles=settings["percentiles"], **common)
    for m, s in found.items():
        cache[metric, context, target, m, key] = s
        cache[f"{metric}_floor", context, target, key, s.floor.grid] = s.floor


def _sanity(job: Job, cache: dict, shared: Shared, x: torch.Tensor, context: tuple, target: int,
            names: Sequence[str], settings: dict) -> None:
    methods = [m for m in names if m != SOBEL]
    job.counter("sanity check: models (trained, randomised A, B)")(0, 3)
    trained = {m: e.heat for m, e in heats(cache, context, target, methods).items() if e.heat is not None}
    methods = [m for m in methods if m in trained]
    functions = {SOBEL: lambda _m, image, _t: sobel_map(image).numpy()} if SOBEL in names else {}
    with shared.lock:
        found = evaluation.sanity_check(shared.model.net, x, methods, target, shared.model.default_layer,
                                        seed=settings["seed"], options={m: method_options(m) for m in methods},
                                        functions=functions, trained=trained,
                                        progress=job.counter("sanity check: models (trained, randomised A, B)"))
    for m, s in found.items():
        cache["sanity", context, target, m, settings["seed"]] = s


def _run(job: Job, cache: dict, shared: Shared, x: torch.Tensor, context: tuple, target: int,
         methods: Sequence[str], metrics: Sequence[str], settings: dict) -> None:
    try:
        todo = missing(cache, context, target, methods, metrics, settings)
        if "maps" in todo:
            _compute_maps(job, cache, shared, x, context, target, todo["maps"])
            job.stages_done += 1
        todo = missing(cache, context, target, methods, metrics, settings)
        for metric in ("faithfulness", "road", "sanity"):
            if metric not in todo:
                continue
            if metric == "sanity":
                _sanity(job, cache, shared, x, context, target, todo[metric], settings)
            else:
                _score(job, cache, shared, x, context, target, todo[metric], metric, settings)
            job.result_arrived()
            job.stages_done += 1
    except ExplainerError as err:
        job.errors.append(str(err))
    except Exception as err:  # a bug: say so on the page, log the details; the page keeps working
        log.exception("evaluation job failed")
        job.errors.append(f"The computation failed unexpectedly ({type(err).__name__}: {err}).")
    finally:
        job.finished = time.perf_counter()


def start(shared: Shared, x: torch.Tensor, context: tuple, target: int, methods: Sequence[str],
          metrics: Sequence[str], settings: dict, background: bool = True) -> Job:
    """Compute what is missing for this request in a thread (``background=False``: here and now)."""
    cache = store()
    todo = missing(cache, context, target, methods, metrics, settings)
    job = Job((context, target, tuple(methods), tuple(metrics)), list(todo))
    st.session_state["ev_job"] = job
    args = (job, cache, shared, x, context, target, list(methods), list(metrics), dict(settings))
    if background:
        job.thread = threading.Thread(target=_run, args=args, daemon=True, name="evaluation")
        job.thread.start()
    else:
        _run(*args)
    return job


def current_job() -> Job | None:
    return st.session_state.get("ev_job")


def results(context: tuple, target: int, names: Sequence[str], metric: str, settings: dict) -> dict[str, Any]:
    """The cached results of ``metric`` for ``names`` (those computed so far); for deletion/insertion
    also the early ones whose floor is still being computed (no verdicts yet)."""
    cache = store()
    key = {"faithfulness": faithfulness_key, "road": road_key}.get(metric, lambda s: s["seed"])(settings)
    kinds = (metric, PARTIAL) if metric == "faithfulness" else (metric,)
    found = {}
    for m in names:
        kind = next((k for k in kinds if (k, context, target, m, key) in cache), None)
        if kind is not None:
            found[m] = cache[kind, context, target, m, key]
    return found


def _cached(kind: str, key: tuple, compute: Callable[[], Any]) -> Any:
    cache = store()
    if (kind, key) not in cache:
        cache[kind, key] = compute()
    return cache[kind, key]


def cascade(shared: Shared, x: torch.Tensor, context: tuple, methods: Sequence[str], target: int, depth: int,
            progress: Progress = None) -> evaluation.Cascade:
    def compute():
        with shared.lock:
            return evaluation.randomisation_cascade(shared.model.net, x, methods, target, shared.model.default_layer,
                                                    depth=depth, progress=progress,
                                                    options={m: method_options(m) for m in methods})
    return _cached("cascade", (*context, tuple(methods), target, depth), compute)


def ig_convergence(shared: Shared, x: torch.Tensor, context: tuple, target: int, steps: Sequence[int],
                   progress: Progress = None) -> evaluation.Convergence:
    def compute():
        with shared.lock:
            return evaluation.image_ig_convergence(shared.model.net, x, target, steps, progress)
    return _cached("convergence", (*context, target, tuple(steps)), compute)


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


# ---- the Images page's "Score these maps" ------------------------------------------------------

def score_image_maps(shared: Shared, x: torch.Tensor, maps: dict[str, np.ndarray], raws: dict[str, Any], target: int,
                     progress: Progress = None) -> dict[str, FaithfulnessScore]:
    """Deletion/insertion of the Images page's maps, each against a floor at its own grid (the
    layer grid of a CAM, from its ``raw`` map; pixels otherwise), the floors cached per (model,
    image, target, grid) in the session and reused for the next maps; variants named like
    ``method`` or ``method@...`` read their record for evidence against the class."""
    digest = hashlib.sha1(x.detach().cpu().numpy().tobytes()).hexdigest()
    cache = store()
    grids = {v: None if raws.get(v) is None or np.shape(raws[v])[-2:] == np.shape(maps[v])[-2:]
             else tuple(np.shape(raws[v])[-2:]) for v in maps}
    prefix = ("badge_floor", shared.model.name, digest, target, tuple(sorted(BADGE_SETTINGS.items())))
    floors = {g: cache[(*prefix, g)] for g in set(grids.values()) if (*prefix, g) in cache}
    against = [v for v in maps if _record(v) is not None and _record(v).evidence_against]
    with shared.lock:
        found = score_maps(shared.model.net, x, maps, target, grids=grids, floors=floors, evidence_against=against,
                           progress=progress, **BADGE_SETTINGS)
    for s in found.values():
        cache[(*prefix, s.floor.grid)] = s.floor
    return found


def _record(variant: str) -> explainers.registry.Method | None:
    try:
        return explainers.method(variant.split("@")[0])
    except ExplainerError:
        return None


def verdict_badge(verdict: evaluation.Verdict) -> str:
    """A coloured badge in full words: the metric and its outcome (no verdict: grey)."""
    colour = "green" if verdict.good else "grey" if not verdict.given else "red"
    icon = "" if verdict.good or not verdict.given else ":material/warning: "
    return f":{colour}-badge[{icon}{verdict.metric}: {verdict.outcome or 'no verdict'}]"


def score_caption(score: FaithfulnessScore) -> str:
    """Under a map: deletion and insertion AUC beside the random floor's median, a badge per metric
    in full words, and the reason for each verdict (or for its absence)."""
    floor = score.floor if score.floor is not None and score.floor.count else None
    median = {k: "n/a" if floor is None else f"{float(np.median(getattr(floor, f'{k}_auc'))):.3f}"
              for k in ("deletion", "insertion")}
    numbers = (f"deletion AUC {score.deletion_auc:.3f} (random maps' median {median['deletion']}) · "
               f"insertion AUC {score.insertion_auc:.3f} (median {median['insertion']})")
    badges = " ".join(verdict_badge(v) for v in score.verdicts.values())
    reasons = " ".join(f"{v.metric}: {v.reason}" for v in score.verdicts.values())
    return f"{numbers} {badges}  \n{reasons}"
