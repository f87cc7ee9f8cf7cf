"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci & Kasneci 2022, ICML), batched.

Removed pixels are not painted over but imputed from their neighbours by *noisy linear
imputation* (sec. 4): every removed pixel's value is the weighted mean of its 8 neighbours
(weight 1/6 for the 4 edge neighbours, 1/12 for the 4 corners; neighbours outside the image
dropped), which is one sparse linear system over the removed pixels per channel, solved
exactly; then N(0, ``noise``^2) is added to the imputed values. So the removal leaves no
tell-tale shape for the model to react to.

At each percentile p (pytorch-grad-cam's convention, so the numbers equal its
``ROADMostRelevantFirst`` / ``ROADLeastRelevantFirst`` / ``ROADCombined``):

- MoRF (most relevant first) keeps the pixels whose value is below the p-th percentile of the
  map and imputes the rest (the top 100 - p %);
- LeRF (least relevant first) keeps the pixels whose negated value is below the p-th percentile
  of the negated map (the top p %) and imputes the rest;
- each gives ``score(imputed) - score(x)`` for the target class; MoRF and LeRF are averaged over
  the percentiles and combined as ``(LeRF - MoRF) / 2``: higher is better (removing what the map
  calls relevant hurts, removing what it calls irrelevant does not).

Speed: the system is assembled with vectorised index arithmetic and factorised by SuperLU with
a symmetric minimum-degree ordering (the matrix is symmetric), and every imputed image of every
map and of the random floor runs in batched no-grad forwards with one forward of ``x``.
The floor and verdict follow :mod:`evaluation.faithfulness` (random maps at each map's grid,
"beats random" above their 95th percentile).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sparse
import torch
from scipy.sparse.linalg import splu
from torch import nn

from evaluation.controls import Grid, check_grid
from evaluation.controls import random_maps as draw_random_maps
from evaluation.faithfulness import RANDOM_MAPS, as_heats, check_count, reusable
from evaluation.verdict import ROAD, Verdict, against_floor, blocker, no_verdict
from explainers.api import check_input
from explainers.engine import Progress, bytes_per_row, forward_in_chunks, image_forward
from explainers.errors import ExplainerError
from explainers.targets import SCORES, resolve_targets, target_scores

PERCENTILES = (20, 40, 60, 80)
NOISE = 0.01
NEIGHBOURS = ((1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12), (0, -1, 1 / 6), (-1, -1, 1 / 12),
              (1, 0, 1 / 6), (-1, 0, 1 / 6))
MORF, LERF = 0, 1


@dataclass
class RoadFloor:
    """MoRF / LeRF (R, P) and combined (R,) of R random maps on ``grid`` for the settings ``key``."""

    grid: Grid
    key: tuple
    morf: np.ndarray
    lerf: np.ndarray
    combined: np.ndarray

    @property
    def count(self) -> int:
        return len(self.combined)


@dataclass
class RoadScore:
    """One map's ROAD: ``morf`` / ``lerf`` (P,) score changes at ``percentiles``, ``combined``, floor, verdict."""

    percentiles: tuple[int, ...]
    morf: np.ndarray
    lerf: np.ndarray
    combined: float
    target: int
    score: str
    probability: float
    floor: RoadFloor | None
    verdict: Verdict


def kept_pixels(heat: np.ndarray, percentile: float, kind: int) -> np.ndarray:
    """Boolean (H, W) of the pixels kept at ``percentile``: MoRF ``m < P_p(m)``, LeRF ``-m < P_p(-m)``."""
    values = heat if kind == MORF else -heat
    return values < np.percentile(values, percentile)


def impute(image: np.ndarray, kept: np.ndarray, noise: float, generator: torch.Generator) -> np.ndarray:
    """Noisy linear imputation of the pixels not ``kept`` in ``image`` (C, H, W) float64 (see the module docstring)."""
    channels, height, width = image.shape
    known = kept.ravel()
    missing = np.flatnonzero(~known)
    n = missing.size
    if n == 0:
        return image.copy()
    if n == known.size:
        raise ExplainerError("ROAD cannot impute an image with every pixel removed.")
    variable = np.full(known.size, -1)
    variable[missing] = np.arange(n)
    row, col = np.divmod(missing, width)
    flat = image.reshape(channels, -1)
    diagonal = np.ones(n)
    rhs = np.zeros((n, channels))
    ii, jj, ww = [], [], []
    for dr, dc, weight in NEIGHBOURS:
        r, c = row + dr, col + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        diagonal[~inside] -= weight
        eq = np.flatnonzero(inside)
        neighbour = r[inside] * width + c[inside]
        has_value = known[neighbour]
        rhs[eq[has_value]] -= weight * flat[:, neighbour[has_value]].T
        ii.append(eq[~has_value])
        jj.append(variable[neighbour[~has_value]])
        ww.append(np.full(int((~has_value).sum()), weight))
    ii.append(np.arange(n))
    jj.append(np.arange(n))
    ww.append(-diagonal)
    system = sparse.csc_matrix((np.concatenate(ww), (np.concatenate(ii), np.concatenate(jj))), shape=(n, n))
    solved = splu(system, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                  options={"SymmetricMode": True}).solve(rhs)
    out = flat.copy()
    out[:, missing] = solved.T + noise * torch.randn(channels, n, generator=generator, dtype=torch.float64).numpy()
    return out.reshape(image.shape)


def road_scores(
    model: nn.Module,
    x: torch.Tensor,
    maps: Mapping[str, Any],
    target: int | None = None,
    *,
    percentiles: Sequence[float] = PERCENTILES,
    noise: float = NOISE,
    score: str = "probability",
    random_maps: int = RANDOM_MAPS,
    grids: Mapping[str, Any] | None = None,
    floors: Mapping[Grid, RoadFloor] | None = None,
    evidence_against: Collection[str] = (),
    seed: int = 0,
    memory_mb: float = 1024.0,
    progress: Progress = None,
) -> dict[str, RoadScore]:
    """ROAD MoRF / LeRF / combined of each (H, W) map in ``maps`` for the image ``x`` (1, C, H, W).

    ``percentiles``: in (0, 100); ``noise``: the imputation noise's standard deviation (in the
    model's input units); ``score``: ``"probability"`` (softmax, as pytorch-grad-cam's
    ``ClassifierOutputSoftmaxTarget``) or ``"logit"`` (``ClassifierOutputTarget``). ``grids``,
    ``floors``, ``evidence_against``, ``random_maps``: as :func:`evaluation.score_maps`.
    ``progress(done, total)`` after each imputed image. The noise is seeded per (seed, percentile,
    MoRF/LeRF), so a map's numbers do not depend on which maps are scored with it.
    """
    check_input(model, x)
    if x.shape[0] != 1:
        raise ExplainerError(f"Score the maps of one image at a time; got a batch of {x.shape[0]}.")
    if score not in SCORES:
        raise ExplainerError(f"score must be one of {', '.join(SCORES)}, got {score!r}.")
    check_count("random_maps", random_maps, 0)
    percentiles = tuple(percentiles)
    if not percentiles or not all(isinstance(p, (int, float)) and 0 < p < 100 for p in percentiles):
        raise ExplainerError(f"percentiles must be numbers strictly between 0 and 100, got {percentiles!r}.")
    if not (isinstance(noise, (int, float)) and noise >= 0):
        raise ExplainerError(f"noise must be a number >= 0, got {noise!r}.")
    height, width = x.shape[2:]
    heats = as_heats(maps, (height, width), "an image of that size").view(-1, height, width)
    grids = {name: check_grid((grids or {}).get(name)) for name in maps}
    key = (target, percentiles, noise, score, random_maps, seed)
    given = reusable(floors, key)
    needed = [g for g in dict.fromkeys(grids.values()) if g not in given]
    drawn = [draw_random_maps(random_maps, (height, width), g, seed) for g in needed]
    every = torch.cat([heats, *drawn]).numpy()
    ranked = [i for i in range(len(every)) if np.ptp(every[i]) > 0]  # a constant map ranks nothing: NaN, no verdict
    jobs = [(i, p, kind) for i in ranked for kind in (MORF, LERF) for p in range(len(percentiles))]
    image = x[0].detach().cpu().double().numpy()
    net, forward = image_forward(model)
    row_bytes = bytes_per_row(net, tuple(x.shape[1:]), lambda: forward(x))
    done = [0]
    unrankable: set[int] = set()

    def run(start: int, stop: int) -> torch.Tensor:
        rows = []
        for row in range(start, stop):
            if row == 0:
                rows.append(x[0])
                continue
            i, p, kind = jobs[row - 1]
            generator = torch.Generator().manual_seed(hash((seed, percentiles[p], kind)) % 2**63)
            kept = kept_pixels(every[i], percentiles[p], kind)
            if not kept.any():  # ties at the top: the percentile keeps nothing, so nothing to impute from
                unrankable.add(row - 1)
                rows.append(x[0])
            else:
                rows.append(torch.as_tensor(impute(image, kept, noise, generator), dtype=x.dtype, device=x.device))
            done[0] += 1
            if progress is not None:
                progress(done[0], len(jobs))
        return forward(torch.stack(rows))

    logits = forward_in_chunks(run, len(jobs) + 1, row_bytes, memory_mb, device=x.device)
    chosen = resolve_targets(logits[:1], target)
    values = target_scores(logits, chosen.expand(len(logits)), score).double().numpy()
    change = np.full((len(every), 2, len(percentiles)), np.nan)
    inner = values[1:] - values[0]
    inner[sorted(unrankable)] = np.nan
    change[ranked] = inner.reshape(len(ranked), 2, len(percentiles))
    morf, lerf = change[:, MORF], change[:, LERF]
    combined = (lerf.mean(axis=1) - morf.mean(axis=1)) / 2
    probability = float(torch.softmax(logits[:1].double(), dim=1)[0, chosen[0]])
    result_floors = dict(given)
    start = len(maps)
    for grid, random in zip(needed, drawn):
        part = slice(start, start + len(random))
        result_floors[grid] = RoadFloor(grid, key, morf[part], lerf[part], combined[part])
        start += len(random)
    out = {}
    for i, name in enumerate(maps):
        floor = result_floors[grids[name]]
        why = blocker(every[i], probability if score == "probability" else None, name in evidence_against)
        if why is None and not np.isfinite(combined[i]):
            why = ("So many pixels share this map's top value that a percentile keeps no pixel to impute from, "
                   "so ROAD cannot be computed.")
        verdict = no_verdict(ROAD, why) if why else against_floor(ROAD, combined[i], floor.combined)
        out[name] = RoadScore(percentiles, morf[i], lerf[i], float(combined[i]), int(chosen[0]), score, probability,
                              floor, verdict)
    return out
