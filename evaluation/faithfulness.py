"""Deletion and insertion curves with their AUC (Petsiuk, Das & Saenko 2018, "RISE", sec. 4.1).

A map orders the input's units (pixels, or tokens) by decreasing value; ties go to the lower
index (raster order), so the order is deterministic. For ``i = 0..k`` let ``n_i =
round(i N / k)`` (N units, k = ``steps``). The deletion curve is the target score after the top
``n_i`` units are replaced (by a blurred copy, a colour, or [PAD]/[MASK] for text); the
insertion curve the score when only the top ``n_i`` units come from the input and the rest from
that replacement. The score is the target's softmax probability (Petsiuk et al.; ``score="logit"``
as an option). AUC = trapezoid rule over the fraction ``n_i / N`` in [0, 1]. Good maps have a
low deletion AUC (the score falls fast) and a high insertion AUC.

All curves of all maps are evaluated together as batched no-grad forwards (chunked to a memory
budget); the fully kept and fully replaced inputs, shared by every curve, run once. So one map
at k = 20 costs 2k = 40 rows. The floor: the mean curve and mean AUC of ``random_maps`` seeded
maps of i.i.d. uniform values (a random order of the units). A map is *no better than random*
when its deletion AUC >= the floor's, or its insertion AUC <= the floor's. ``random_maps=0``
skips the floor (its curves and AUCs are NaN, and no map is flagged).

Image floors are random on a ``random_grid`` x ``random_grid`` grid of cells (default 7, the
resolution of a CAM at a 7x7 layer), nearest-upsampled, so they remove patches as a CAM does.
Removing scattered single pixels instead creates high-frequency artefacts that collapse the
score on their own: measured on the bundled EfficientNet-Lite0 and the "cat" sample (grey
replacement, k = 10), pixel-level random deletion AUC 0.10 against Grad-CAM's 0.34 and a 7x7
random map's 0.41. ``random_grid=None`` gives the pixel-level floor. Such numbers depend on the
replacement and the floor's granularity: read them as a comparison, not an absolute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explainers.api import check_input
from explainers.engine import Progress, bytes_per_row, forward_in_chunks, no_grad_forward
from explainers.errors import ExplainerError
from explainers.gradients import BASELINES, make_baseline
from explainers.targets import SCORES, resolve_targets, target_scores
from explainers.text import PreparedText, prepare_text

STEPS = 20
RANDOM_MAPS = 3
RANDOM_GRID = 7
TEXT_REPLACEMENTS = ("pad", "mask")


@dataclass
class FaithfulnessScore:
    """Deletion/insertion curves of one map and of the random floor, over ``fractions`` (k+1,)."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float
    random_deletion_auc: float
    random_insertion_auc: float
    target: int
    score: str

    @property
    def no_better_than_random(self) -> bool:
        """Deletion AUC at or above the random floor's, or insertion AUC at or below it."""
        return self.deletion_auc >= self.random_deletion_auc or self.insertion_auc <= self.random_insertion_auc


def auc(fractions: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Area under ``curve`` (..., k+1) over ``fractions`` (k+1,) by the trapezoid rule."""
    widths = np.diff(fractions)
    return ((curve[..., 1:] + curve[..., :-1]) / 2 * widths).sum(axis=-1)


def unit_ranks(heat: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(M, U) position of each unit in each map's order: decreasing value, ties to the lower
    index, units not ``valid`` (e.g. special tokens) last."""
    key = heat.to(torch.float64).masked_fill(~valid, -torch.inf)
    order = torch.sort(key, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(heat.shape[1]).expand_as(order).contiguous())
    return ranks


def step_counts(valid_units: int, steps: int) -> torch.Tensor:
    """``n_i = round(i N / k)`` for i = 0..k (k capped at N: every step moves at least one unit)."""
    k = min(steps, valid_units)
    return torch.round(torch.arange(k + 1, dtype=torch.float64) * valid_units / k).long()


def curves_rows(ranks: torch.Tensor, counts: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Keep-masks (rows, U), True = the unit comes from the input: the fully kept row, the fully
    replaced row, then every map's deletion steps 1..k-1, then its insertion steps 1..k-1."""
    top = ranks[:, None, :] < counts[None, 1:-1, None]  # (M, k-1, U)
    deletion, insertion = ~top, top | ~valid
    ends = torch.stack([torch.ones_like(valid), ~valid])
    return torch.cat([ends, deletion.flatten(0, 1), insertion.flatten(0, 1)])


def split_curves(scores: torch.Tensor, maps: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of :func:`curves_rows`' rows -> deletion and insertion curves (M, k+1) each."""
    full, empty = scores[0], scores[1]
    inner = scores[2:].view(2, maps, steps - 1)
    column = lambda value: value.expand(maps, 1)  # noqa: E731
    deletion = torch.cat([column(full), inner[0], column(empty)], dim=1)
    insertion = torch.cat([column(empty), inner[1], column(full)], dim=1)
    return deletion.double().numpy(), insertion.double().numpy()


def _check_common(steps: Any, score: Any, random_maps: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ExplainerError(f"steps must be a whole number >= 1, got {steps!r}.")
    if score not in SCORES:
        raise ExplainerError(f"score must be one of {', '.join(SCORES)}, got {score!r}.")
    if isinstance(random_maps, bool) or not isinstance(random_maps, int) or random_maps < 0:
        raise ExplainerError(f"random_maps must be a whole number >= 0, got {random_maps!r}.")


def _as_heats(maps: Mapping[str, Any], units: int, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if not maps:
        raise ExplainerError("Give at least one map to score.")
    heats = []
    for name, heat in maps.items():
        array = np.asarray(heat.detach().cpu() if isinstance(heat, torch.Tensor) else heat)
        t = torch.as_tensor(array, dtype=torch.float64)
        if tuple(t.shape) != shape:
            raise ExplainerError(f"Map {name!r} has shape {tuple(t.shape)}; {what} needs {shape}.")
        if not torch.isfinite(t).all():
            raise ExplainerError(f"Map {name!r} contains NaN or infinite values.")
        heats.append(t.reshape(units))
    return torch.stack(heats)


def _score_all(
    names: list[str],
    heats: torch.Tensor,
    valid: torch.Tensor,
    steps: int,
    noise: torch.Tensor,
    evaluate: Callable[[torch.Tensor], torch.Tensor],
    target: Any,
    score: str,
) -> dict[str, FaithfulnessScore]:
    """The shared part: maps + random maps ``noise`` (R, U) -> keep-masks -> logits -> curves, AUCs, floor."""
    ranks = unit_ranks(torch.cat([heats, noise]), valid)
    n_valid = int(valid.sum())
    if n_valid < 1:
        raise ExplainerError("Nothing to remove: the input has no units that may be replaced.")
    counts = step_counts(n_valid, steps)
    k = len(counts) - 1
    logits = evaluate(curves_rows(ranks, counts, valid))
    chosen = resolve_targets(logits[:1], target)
    scores = target_scores(logits, chosen.expand(logits.shape[0]), score)
    deletion, insertion = split_curves(scores, len(ranks), k)
    fractions = (counts.double() / n_valid).numpy()
    del_auc, ins_auc = auc(fractions, deletion), auc(fractions, insertion)
    m = len(names)
    mean = (lambda v: v[m:].mean(axis=0)) if len(noise) else (lambda v: np.full(v.shape[1:], np.nan))  # noqa: E731
    floor = dict(
        random_deletion=mean(deletion), random_insertion=mean(insertion),
        random_deletion_auc=float(mean(del_auc)), random_insertion_auc=float(mean(ins_auc)),
    )
    return {
        name: FaithfulnessScore(fractions, deletion[i], insertion[i], deletion_auc=float(del_auc[i]),
                                insertion_auc=float(ins_auc[i]), target=int(chosen[0]), score=score, **floor)
        for i, name in enumerate(names)
    }


def score_maps(
    model: nn.Module,
    x: torch.Tensor,
    maps: Mapping[str, Any],
    target: int | None = None,
    *,
    steps: int = STEPS,
    replacement: str | torch.Tensor = "zero",
    blur_sigma: float = 5.0,
    black: Any = None,
    score: str = "probability",
    random_maps: int = RANDOM_MAPS,
    random_grid: int | None = RANDOM_GRID,
    seed: int = 0,
    memory_mb: float = 1024.0,
    progress: Progress = None,
) -> dict[str, FaithfulnessScore]:
    """Deletion/insertion scores of each (H, W) map in ``maps`` for the image ``x`` (1, C, H, W).

    ``target``: the class (None: the model's prediction for ``x``). ``replacement``: what removed
    pixels become, as :func:`explainers.gradients.make_baseline` builds it: ``"zero"`` (the zero
    tensor: the mean colour under mean/std scaling, grey under TF scaling; RISE's deletion
    substrate), ``"blur"`` (Gaussian of ``blur_sigma`` pixels; RISE's insertion substrate),
    ``"black"`` (with ``black`` = a black pixel's value per channel after preprocessing),
    ``"uniform"`` noise, or a tensor. ``random_grid``: see the module docstring. All maps and the
    random floor share one batched evaluation; ``progress(done, rows)`` after each chunk.
    """
    check_input(model, x)
    if x.shape[0] != 1:
        raise ExplainerError(f"Score the maps of one image at a time; got a batch of {x.shape[0]}.")
    _check_common(steps, score, random_maps)
    if not isinstance(replacement, torch.Tensor) and replacement not in BASELINES:
        raise ExplainerError(f"replacement must be one of {', '.join(BASELINES)} or a tensor, got {replacement!r}.")
    height, width = x.shape[2:]
    heats = _as_heats(maps, height * width, (height, width), "an image of that size")
    baseline = make_baseline(x, {"baseline": replacement, "black": black, "blur_sigma": blur_sigma, "seed": seed})
    difference = x - baseline
    forward = no_grad_forward(model)
    row_bytes = bytes_per_row(model, tuple(x.shape[1:]), lambda: model(x))

    def evaluate(keep: torch.Tensor) -> torch.Tensor:
        def run(start: int, stop: int) -> torch.Tensor:
            mask = keep[start:stop].view(-1, 1, height, width).to(x.dtype)
            return forward(baseline + mask * difference)
        return forward_in_chunks(run, len(keep), row_bytes, memory_mb, progress)

    valid = torch.ones(height * width, dtype=torch.bool)
    noise = random_maps_image(random_maps, (height, width), random_grid, seed)
    return _score_all(list(maps), heats, valid, steps, noise, evaluate, target, score)


def random_maps_image(count: int, size: tuple[int, int], grid: int | None, seed: int) -> torch.Tensor:
    """(count, H * W) i.i.d. uniform maps, on a ``grid`` x ``grid`` of cells (nearest upsampling) or per pixel."""
    generator = torch.Generator().manual_seed(seed)
    if grid is None:
        return torch.rand(count, size[0] * size[1], generator=generator, dtype=torch.float64)
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise ExplainerError(f"random_grid must be None or a whole number >= 1, got {grid!r}.")
    cells = torch.rand(count, 1, grid, grid, generator=generator, dtype=torch.float64)
    return F.interpolate(cells, size=size, mode="nearest").reshape(count, size[0] * size[1])


def score_map(model: nn.Module, x: torch.Tensor, heat: Any, target: int | None = None, **options: Any) -> FaithfulnessScore:
    """:func:`score_maps` for a single (H, W) map."""
    return score_maps(model, x, {"map": heat}, target, **options)["map"]


def score_tokens(
    model: nn.Module,
    tokenizer: Any,
    text: str | PreparedText,
    scores: Mapping[str, Any],
    target: int | None = None,
    *,
    steps: int = STEPS,
    replacement: str = "pad",
    score: str = "probability",
    random_maps: int = RANDOM_MAPS,
    seed: int = 0,
    memory_mb: float = 1024.0,
    progress: Progress = None,
) -> dict[str, FaithfulnessScore]:
    """Deletion/insertion scores of each token-score vector (T,) in ``scores`` for ``text``.

    Tokens are replaced by [PAD] (``replacement="pad"``) or [MASK] ids, the attention mask
    unchanged; special tokens ([CLS], [SEP]) are never replaced and not counted. ``scores`` are
    aligned with :func:`explainers.text.prepare_text`'s tokens (``TextAttribution.scores``; for
    a layer method pick one row). ``steps`` is capped at the number of ordinary tokens.
    """
    _check_common(steps, score, random_maps)
    if replacement not in TEXT_REPLACEMENTS:
        raise ExplainerError(f"replacement must be one of {', '.join(TEXT_REPLACEMENTS)}, got {replacement!r}.")
    token = tokenizer.pad_token_id if replacement == "pad" else tokenizer.mask_token_id
    if token is None:
        raise ExplainerError(f"This tokenizer has no {replacement} token; choose the other replacement.")
    prepared = text if isinstance(text, PreparedText) else prepare_text(model, tokenizer, text)
    ids = prepared.inputs["input_ids"]
    length = ids.shape[1]
    heats = _as_heats(scores, length, (length,), f"a text of {length} tokens")
    valid = ~torch.tensor(prepared.special, device=ids.device)
    forward = no_grad_forward(model)
    row_bytes = bytes_per_row(model, ("tokens", length), lambda: model(**prepared.inputs))

    def evaluate(keep: torch.Tensor) -> torch.Tensor:
        def run(start: int, stop: int) -> torch.Tensor:
            rows = keep[start:stop].to(ids.device)
            inputs = prepared.batch(stop - start) | {"input_ids": torch.where(rows, ids, token)}
            output = forward(**inputs)
            return getattr(output, "logits", output)
        return forward_in_chunks(run, len(keep), row_bytes, memory_mb, progress)

    noise = torch.rand(random_maps, length, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return _score_all(list(scores), heats, valid, steps, noise, evaluate, target, score)
