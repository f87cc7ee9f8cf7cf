"""Deletion and insertion curves with their AUC (Petsiuk, Das & Saenko 2018, "RISE", sec. 4.1).

A map orders the input's units (pixels, or tokens) by decreasing value; ties go to the lower
index (raster order), so the order is deterministic. For ``i = 0..k`` let ``n_i = round(i N /
k)`` (N units, k = ``steps``). Deletion: the target score after the top ``n_i`` units are
replaced by the *deletion fill* (default the zero tensor: grey under TF scaling, the mean colour
under mean/std scaling; [PAD]/[MASK] for text). Insertion, as RISE defines it: the score when the
top ``n_i`` units come from the input and the rest from the *insertion start* (default a blurred
copy of the image, Gaussian of ``blur_sigma`` px; text: the same token replacement). Both
substrates are named in the result. The score is the target's softmax probability (RISE;
``score="logit"`` as an option). AUC = trapezoid rule over the fraction ``n_i / N`` in [0, 1]. A
good map has a low deletion AUC and a high insertion AUC.

The floor (:class:`Floor`): the same curves for ``random_maps`` seeded random maps drawn at the
method's own resolution (``grids``: a CAM's layer grid, upsampled as a CAM is; pixels for
saliency-type maps, see :mod:`evaluation.controls`). A floor depends only on (model, image,
target, settings, grid): pass it back in ``floors`` and it is reused, not recomputed, for the
next maps. Each metric's verdict (:mod:`evaluation.verdict`) says whether the map is better than
95% of the random maps, or why there is no verdict (a map that ranks nothing, a class with ~0
probability, a map of evidence against the class).

All curves of all maps run as one set of batched no-grad forwards (of the network's folded
channels_last copy, :func:`explainers.engine.image_forward`), chunked to a memory budget,
then those of the floors that are not given (so ``partial`` can hand the maps' curves to a page
first); the fully kept input and the two fully replaced inputs, shared by every curve, run once:
one map at k = 20 costs 2 (k - 1) = 38 rows, plus 3.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluation.controls import Grid, check_grid
from evaluation.controls import random_maps as draw_random_maps
from evaluation.verdict import DELETION, INSERTION, Verdict, against_floor, blocker, no_verdict
from explainers.api import check_input
from explainers.engine import Progress, bytes_per_row, forward_in_chunks, image_forward, no_grad_forward
from explainers.errors import ExplainerError
from explainers.gradients import BASELINES, make_baseline
from explainers.targets import SCORES, resolve_targets, target_scores
from explainers.text import PreparedText, prepare_text

STEPS = 20
RANDOM_MAPS = 20
BLUR_SIGMA = 5.0
TEXT_REPLACEMENTS = ("pad", "mask")
DELETE, INSERT = 0, 1


@dataclass
class Floor:
    """Deletion/insertion curves (R, k+1) and AUCs (R,) of R random maps on ``grid``, for the settings ``key``."""

    grid: Grid
    key: tuple
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: np.ndarray
    insertion_auc: np.ndarray

    @property
    def count(self) -> int:
        return len(self.deletion_auc)


@dataclass
class FaithfulnessScore:
    """Deletion/insertion curves (k+1,) of one map over ``fractions``, their AUCs, the floor and the verdicts.

    ``probability``: the target's probability on the unchanged input. ``verdicts``: ``"deletion"``
    and ``"insertion"`` -> :class:`evaluation.verdict.Verdict`. The ``random_*`` properties are the
    floor's mean curve and mean AUC (NaN without a floor).
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float
    target: int
    score: str
    probability: float
    deletion_substrate: str
    insertion_substrate: str
    floor: Floor | None
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    def _mean(self, name: str) -> Any:
        if self.floor is None or self.floor.count == 0:
            return np.full_like(self.fractions, np.nan) if name in ("deletion", "insertion") else float("nan")
        value = getattr(self.floor, name).mean(axis=0)
        return value if np.ndim(value) else float(value)

    @property
    def random_deletion(self) -> np.ndarray:
        return self._mean("deletion")

    @property
    def random_insertion(self) -> np.ndarray:
        return self._mean("insertion")

    @property
    def random_deletion_auc(self) -> float:
        return self._mean("deletion_auc")

    @property
    def random_insertion_auc(self) -> float:
        return self._mean("insertion_auc")


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


def curve_rows(maps: int, counts: torch.Tensor, shared: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows as (map index, units moved, kind): the fully kept input, the fully deleted input, the
    insertion start (``shared``: these three, common to every curve), then every map's deletion
    steps 1..k-1, then its insertion steps 1..k-1."""
    inner = counts[1:-1]
    k1 = len(inner)
    first = 3 if shared else 0
    index = torch.cat([torch.zeros(first, dtype=torch.long), torch.arange(maps).repeat_interleave(k1).repeat(2)])
    moved = torch.cat([torch.stack([counts[0], counts[-1], counts[0]])[:first], inner.repeat(2 * maps)])
    kind = torch.cat([torch.tensor([DELETE, DELETE, INSERT])[:first], torch.full((maps * k1,), DELETE),
                      torch.full((maps * k1,), INSERT)])
    return index, moved, kind


def keep_masks(ranks: torch.Tensor, valid: torch.Tensor, rows: tuple[torch.Tensor, ...], start: int,
               stop: int) -> torch.Tensor:
    """(stop - start, U) True where the unit comes from the input: deletion keeps all but the top
    units, insertion only the top units (and the units that are never replaced)."""
    index, moved, kind = (r[start:stop] for r in rows)
    top = ranks[index] < moved[:, None]
    return torch.where((kind == DELETE)[:, None], ~top, top | ~valid)


def split_curves(shared: torch.Tensor, scores: torch.Tensor, maps: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The three shared rows' scores and the scores of :func:`curve_rows`' other rows -> deletion and
    insertion curves (M, k+1) each."""
    full, deleted, start = shared
    inner = scores.view(2, maps, steps - 1)
    column = lambda value: value.expand(maps, 1)  # noqa: E731
    deletion = torch.cat([column(full), inner[0], column(deleted)], dim=1)
    insertion = torch.cat([column(start), inner[1], column(full)], dim=1)
    return deletion.double().numpy(), insertion.double().numpy()


def check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ExplainerError(f"{name} must be a whole number >= {minimum}, got {value!r}.")


def _check_common(steps: Any, score: Any, random_maps: Any) -> None:
    check_count("steps", steps, 1)
    if score not in SCORES:
        raise ExplainerError(f"score must be one of {', '.join(SCORES)}, got {score!r}.")
    check_count("random_maps", random_maps, 0)


def as_heats(maps: Mapping[str, Any], shape: tuple[int, ...], what: str) -> torch.Tensor:
    """(M, prod(shape)) float64 maps, checked for shape and finiteness."""
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
        heats.append(t.reshape(-1))
    return torch.stack(heats)


def reusable(floors: Mapping[Grid, Floor] | None, key: tuple) -> dict[Grid, Floor]:
    """The given floors that were computed with exactly these settings (any other is recomputed)."""
    return {g: f for g, f in (floors or {}).items() if f.key == key}


Evaluate = Callable[[torch.Tensor, tuple[torch.Tensor, ...], Progress], torch.Tensor]
"""``evaluate(ranks, rows, progress)``: the model's logits for :func:`curve_rows`' rows of maps ranked ``ranks``."""


def _score_all(
    maps: Mapping[str, Any],
    heats: torch.Tensor,
    grids: dict[str, Grid],
    given: dict[Grid, Floor],
    noise: Callable[[Grid], torch.Tensor],
    valid: torch.Tensor,
    steps: int,
    evaluate: Evaluate,
    target: Any,
    score: str,
    key: tuple,
    substrates: tuple[str, str],
    evidence_against: Collection[str],
    progress: Progress,
    partial: Callable[[dict[str, FaithfulnessScore]], None] | None = None,
) -> dict[str, FaithfulnessScore]:
    """The shared part: maps -> rows -> logits -> curves and AUCs; then the floors' random maps the
    same way (``partial(scores)`` in between: the maps' curves, verdicts only where a floor was given);
    floors and verdicts."""
    n_valid = int(valid.sum())
    if n_valid < 1:
        raise ExplainerError("Nothing to remove: the input has no units that may be replaced.")
    needed = [g for g in dict.fromkeys(grids.values()) if g not in given]
    drawn = [noise(g) for g in needed]
    counts = step_counts(n_valid, steps)
    k = len(counts) - 1
    random = torch.cat(drawn) if drawn else heats[:0]
    total = 3 + 2 * (k - 1) * (len(heats) + len(random))  # rows
    done = [0]

    def run(ranked: torch.Tensor, shared: bool) -> torch.Tensor:
        rows = curve_rows(len(ranked), counts, shared)
        offset = done[0]
        counted = None if progress is None else lambda d, _n: progress(offset + d, total)
        out = evaluate(ranked, rows, counted)
        done[0] += len(rows[0])
        return out

    logits = run(unit_ranks(heats, valid), True)
    chosen = resolve_targets(logits[:1], target)
    probability = float(torch.softmax(logits[:1].double(), dim=1)[0, chosen[0]])

    def scores_of(found: torch.Tensor) -> torch.Tensor:
        return target_scores(found, chosen.expand(found.shape[0]), score)

    scored = scores_of(logits)
    shared, fractions = scored[:3], (counts.double() / n_valid).numpy()

    def results(floors: Mapping[Grid, Floor]) -> dict[str, FaithfulnessScore]:
        out = {}
        for i, name in enumerate(maps):
            floor = floors.get(grids[name])
            why = blocker(heats[i].numpy(), probability if score == "probability" else None, name in evidence_against)
            verdicts = {} if floor is None and why is None else {
                "deletion": no_verdict(DELETION, why) if why else against_floor(DELETION, del_auc[i], floor.deletion_auc),
                "insertion": no_verdict(INSERTION, why) if why else against_floor(INSERTION, ins_auc[i], floor.insertion_auc),
            }
            out[name] = FaithfulnessScore(fractions, deletion[i], insertion[i], float(del_auc[i]), float(ins_auc[i]),
                                          int(chosen[0]), score, probability, *substrates, floor, verdicts)
        return out

    deletion, insertion = split_curves(shared, scored[3:], len(heats), k)
    del_auc, ins_auc = auc(fractions, deletion), auc(fractions, insertion)
    floors = dict(given)
    if drawn:
        if partial is not None:
            partial(results(floors))
        random_deletion, random_insertion = (
            split_curves(shared, scores_of(run(unit_ranks(random, valid), False)), len(random), k) if len(random)
            else (np.zeros((0, k + 1)), np.zeros((0, k + 1))))
        start = 0
        for grid, random in zip(needed, drawn):
            part = slice(start, start + len(random))
            d, i = random_deletion[part], random_insertion[part]
            floors[grid] = Floor(grid, key, fractions, d, i, auc(fractions, d), auc(fractions, i))
            start += len(random)
    return results(floors)


def substrate_name(replacement: Any, blur_sigma: float) -> str:
    """What removed pixels become, in words."""
    if isinstance(replacement, torch.Tensor):
        return "a given image"
    return {"zero": "the zero tensor (the mean colour; grey under TF scaling)",
            "blur": f"a blurred copy (Gaussian, sigma {blur_sigma:g} px)", "black": "black",
            "uniform": "uniform noise"}[replacement]


def score_maps(
    model: nn.Module,
    x: torch.Tensor,
    maps: Mapping[str, Any],
    target: int | None = None,
    *,
    steps: int = STEPS,
    replacement: str | torch.Tensor = "zero",
    insertion_start: str | torch.Tensor = "blur",
    blur_sigma: float = BLUR_SIGMA,
    black: Any = None,
    score: str = "probability",
    random_maps: int = RANDOM_MAPS,
    grids: Mapping[str, Any] | None = None,
    floors: Mapping[Grid, Floor] | None = None,
    evidence_against: Collection[str] = (),
    seed: int = 0,
    memory_mb: float = 1024.0,
    progress: Progress = None,
    partial: Callable[[dict[str, FaithfulnessScore]], None] | None = None,
) -> dict[str, FaithfulnessScore]:
    """Deletion/insertion scores of each (H, W) map in ``maps`` for the image ``x`` (1, C, H, W).

    ``target``: the class (None: the model's prediction for ``x``). ``replacement`` (the deletion
    fill) and ``insertion_start``, as :func:`explainers.gradients.make_baseline` builds them:
    ``"zero"``, ``"blur"`` (``blur_sigma`` px), ``"black"`` (``black`` = a black pixel's value per
    channel after preprocessing), ``"uniform"`` noise (``seed``) or a tensor. ``grids[name]``: the
    map's own resolution for its floor (``(h, w)`` cells, or None = pixels, the default);
    ``floors``: floors from an earlier call (``result.floor``), reused when their settings match.
    ``evidence_against``: names of maps that show evidence against the class (no verdict).
    ``progress(done, rows)`` after each chunk of rows. ``partial(scores)``: called when the maps'
    own curves are done and the floors' are still to run (scores without a floor have no verdicts),
    so a page can show the AUCs first.
    """
    check_input(model, x)
    if x.shape[0] != 1:
        raise ExplainerError(f"Score the maps of one image at a time; got a batch of {x.shape[0]}.")
    _check_common(steps, score, random_maps)
    for name, value in (("replacement", replacement), ("insertion_start", insertion_start)):
        if not isinstance(value, torch.Tensor) and value not in BASELINES:
            raise ExplainerError(f"{name} must be one of {', '.join(BASELINES)} or a tensor, got {value!r}.")
    height, width = x.shape[2:]
    heats = as_heats(maps, (height, width), "an image of that size")
    grids = {name: check_grid((grids or {}).get(name)) for name in maps}
    made = {"black": black, "blur_sigma": blur_sigma, "seed": seed}
    substrates = torch.cat([make_baseline(x, made | {"baseline": replacement}),
                            make_baseline(x, made | {"baseline": insertion_start})])
    net, forward = image_forward(model)
    row_bytes = bytes_per_row(net, tuple(x.shape[1:]), lambda: forward(x))
    valid = torch.ones(height * width, dtype=torch.bool)

    def evaluate(ranks: torch.Tensor, rows: tuple[torch.Tensor, ...], counted: Progress) -> torch.Tensor:
        def run(start: int, stop: int) -> torch.Tensor:
            keep = keep_masks(ranks, valid, rows, start, stop).view(-1, 1, height, width).to(x.dtype)
            base = substrates[rows[2][start:stop]]
            return forward(base + keep * (x - base))
        return forward_in_chunks(run, len(rows[0]), row_bytes, memory_mb, counted, device=x.device)

    tensor_key = lambda v: ("tensor", tuple(v.flatten()[:8].tolist())) if isinstance(v, torch.Tensor) else v  # noqa: E731
    key = (target, steps, tensor_key(replacement), tensor_key(insertion_start), blur_sigma, str(black), score,
           random_maps, seed)
    names = (substrate_name(replacement, blur_sigma), substrate_name(insertion_start, blur_sigma))
    return _score_all(maps, heats, grids, reusable(floors, key),
                      lambda g: draw_random_maps(random_maps, (height, width), g, seed).reshape(random_maps, -1),
                      valid, steps, evaluate, target, score, key, names, evidence_against, progress, partial)


def score_map(model: nn.Module, x: torch.Tensor, heat: Any, target: int | None = None, **options: Any) -> FaithfulnessScore:
    """:func:`score_maps` for a single (H, W) map (``grid=`` its resolution, as ``grids`` takes)."""
    grid = options.pop("grid", None)
    return score_maps(model, x, {"map": heat}, target, grids={"map": grid}, **options)["map"]


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
    floors: Mapping[Grid, Floor] | None = None,
    seed: int = 0,
    memory_mb: float = 1024.0,
    progress: Progress = None,
) -> dict[str, FaithfulnessScore]:
    """Deletion/insertion scores of each token-score vector (T,) in ``scores`` for ``text``.

    Tokens are replaced by [PAD] (``replacement="pad"``) or [MASK] ids in both curves, the
    attention mask unchanged; special tokens ([CLS], [SEP]) are never replaced and not counted.
    ``scores`` are aligned with :func:`explainers.text.prepare_text`'s tokens
    (``TextAttribution.scores``; for a layer method pick one row). ``steps`` is capped at the
    number of ordinary tokens. The floor: ``random_maps`` random orders of the tokens.
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
    heats = as_heats(scores, (length,), f"a text of {length} tokens")
    valid = ~torch.tensor(prepared.special)
    forward = no_grad_forward(model)
    row_bytes = bytes_per_row(model, ("tokens", length), lambda: model(**prepared.inputs))

    def evaluate(ranks: torch.Tensor, rows: tuple[torch.Tensor, ...], counted: Progress) -> torch.Tensor:
        def run(start: int, stop: int) -> torch.Tensor:
            keep = keep_masks(ranks, valid, rows, start, stop).to(ids.device)
            output = forward(**(prepared.batch(stop - start) | {"input_ids": torch.where(keep, ids, token)}))
            return getattr(output, "logits", output)
        return forward_in_chunks(run, len(rows[0]), row_bytes, memory_mb, counted, device=ids.device)

    generator = torch.Generator().manual_seed(seed)
    key = (target, steps, replacement, score, random_maps, seed)
    words = f"the {replacement.upper()} token"
    return _score_all(scores, heats, dict.fromkeys(scores), reusable(floors, key),
                      lambda _g: torch.rand(random_maps, length, generator=generator, dtype=torch.float64),
                      valid, steps, evaluate, target, score, key, (words, words), (), progress)
