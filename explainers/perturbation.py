"""The steps every perturbation method shares: hide parts of the input, score the copies in batched
no-grad forwards, and fit or sum what the scores say.

Occlusion, RISE and LIME (images and text) only query the model. Each builds copies of one
input with some parts hidden, and :func:`image_scores` / :func:`text_scores` run them through
the engine's no-grad chunks (:func:`explainers.engine.forward_in_chunks`, rows per chunk =
``memory_mb`` / :func:`explainers.engine.bytes_per_row`, or exactly ``batch_size``), on the
network's folded channels_last copy (:func:`explainers.folded.gradient_net`, the same function),
with ``progress(done, total)`` counting forwards over the whole batch of items. The model is left
as found (:func:`explainers.capture.preserved_state` around every chunk).

- Image fill (``baseline``): the Integrated Gradients baselines (:func:`explainers.gradients.make_baseline`:
  zero, black, blur, uniform, or a tensor); a hidden pixel takes the fill's value.
- Text (``baseline``): ``"remove"`` deletes the hidden pieces (the copy is shorter, right-padded
  with an attention mask of 0), ``"mask"`` / ``"pad"`` replace them by [MASK] / [PAD].
- :func:`weighted_ridge`: LIME's surrogate, ``argmin_b,beta sum_i w_i (y_i - b - z_i beta)^2 + alpha |beta|^2``
  (sklearn ``Ridge(alpha=1)`` with ``sample_weight``, as the ``lime`` package fits it) with its weighted R^2.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from explainers.engine import bytes_per_row, device_of, forward_in_chunks, image_forward, no_grad_forward, predict
from explainers.errors import ExplainerError
from explainers.gradients import BASELINES, make_baseline
from explainers.options import MEMORY, PROGRESS, SEED, Option, baseline_check, check_black, choice, count, number
from explainers.targets import TargetSpec, resolve_targets, target_scores

MakeRows = Callable[[int, int], torch.Tensor]


def check_batch_size(value: Any) -> None:
    if value is not None:
        count("batch_size", 1, 1_000_000)(value)


BATCH_SIZE = Option(None, check_batch_size, "forwards per chunk; None sizes chunks to memory_mb")
PROBABILITY = Option("probability", choice("score", ("logit", "probability")), "the score perturbed copies are read by")
RUN = {"seed": SEED, "memory_mb": MEMORY, "batch_size": BATCH_SIZE, "progress": PROGRESS}
"""Options of every perturbation run: the sampling seed, the chunk budget (or size) and progress."""
FILL = {
    "baseline": Option("zero", baseline_check(BASELINES), "fill of hidden pixels: zero, black, blur, uniform, or a tensor"),
    "black": Option(None, check_black, "per-channel value of a black pixel after preprocessing"),
    "blur_sigma": Option(10.0, number("blur_sigma", 0.0, False), "blur fill's Gaussian sigma, pixels"),
}
"""Image fill options: the Integrated Gradients baselines' choices."""
TEXT_FILL = Option("remove", choice("baseline", ("remove", "mask", "pad")),
                   "hidden pieces: removed (leave-one-out), or replaced by [MASK] / [PAD]")
UNIT = Option("word", choice("unit", ("word", "token")), "hide whole words (pieces merged) or single tokens")


def with_defaults(table: dict[str, Option], options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` with the table's defaults for what is missing (for cost estimates)."""
    return {**{k: o.default for k, o in table.items()}, **(options or {})}


def seed_for(seed: int | None) -> int:
    """``seed``, or a fresh one from the OS entropy (recorded in ``extras["seed"]`` so a run can be repeated)."""
    return int(np.random.SeedSequence().generate_state(1)[0] >> 1) if seed is None else int(seed)


def item_targets(model: nn.Module, x: torch.Tensor, target: TargetSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) targets and the clean logits (B, K) of ``x``: one no-grad forward."""
    logits = predict(model, x)
    return resolve_targets(logits, target), logits


def item_progress(options: dict[str, Any], item: int, items: int) -> Callable[[int, int], None] | None:
    """``progress(done, total)`` of one item's forwards, reported as counts over all items."""
    report = options.get("progress")
    if report is None:
        return None
    return lambda done, total: report(item * total + done, items * total)


def image_scores(model: nn.Module, make: MakeRows, rows: int, target: int, options: dict[str, Any], key: Hashable,
                 progress: Callable[[int, int], None] | None,
                 each: Callable[[int, int, torch.Tensor], None] | None = None,
                 logits_of: MakeRows | None = None) -> torch.Tensor:
    """Target scores (rows,) of the images ``make(start, stop)`` (stop - start, C, H, W), in no-grad
    chunks of the folded channels_last copy (``options``: ``score``, ``memory_mb``, ``batch_size``);
    ``each(start, stop, scores)`` sees every chunk's scores while its images are the latest made;
    ``logits_of(start, stop)``, when given, computes those images' logits in its own way, and chunks are
    sized by its own one-row probe (``key`` must then name everything its rows' size depends on)."""
    net, call = image_forward(model)
    score = options.get("score", "logit")

    def run(start: int, stop: int) -> torch.Tensor:
        logits = call(make(start, stop)) if logits_of is None else logits_of(start, stop)
        scores = target_scores(logits, torch.full((stop - start,), target, device=logits.device), score)
        if each is not None:
            each(start, stop, scores)
        return scores

    if logits_of is None:
        row = bytes_per_row(net, key, lambda: call(make(0, 1)))
    else:  # its own rows may need far less than a whole forward's
        row = bytes_per_row(net, (key, "logits_of"), lambda: logits_of(0, 1))
    return forward_in_chunks(run, rows, row, options["memory_mb"], progress, options.get("batch_size"),
                             device_of(model))


def fill_of(x: torch.Tensor, options: dict[str, Any], seed: int | None) -> torch.Tensor:
    """The image a hidden pixel is taken from (the IG baselines, :func:`explainers.gradients.make_baseline`;
    ``seed`` draws the uniform fill)."""
    return make_baseline(x, {**options, "seed": seed})


def cosine_distance_to_ones(z: np.ndarray) -> np.ndarray:
    """Cosine distance of each binary row of ``z`` (N, d) to the all-ones row; 1 for an all-zero row
    (as sklearn's ``pairwise_distances(metric="cosine")``, which the ``lime`` package uses)."""
    kept = z.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = np.where(kept > 0, kept / np.sqrt(np.maximum(kept, 1e-300) * z.shape[1]), 0.0)
    return 1.0 - similarity


def lime_kernel(distances: np.ndarray, width: float) -> np.ndarray:
    """LIME's sample weights ``sqrt(exp(-d^2 / width^2))`` (the ``lime`` package's default kernel)."""
    return np.sqrt(np.exp(-(distances**2) / width**2))


def weighted_ridge(z: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray, float, float]:
    """``(beta (d,), intercept, R^2)`` of the weighted ridge fit (module docstring), in float64.

    Centre z and y on their weighted means, solve ``(Zc' W Zc + alpha I) beta = Zc' W yc``, and
    ``intercept = ybar - zbar beta``; R^2 = 1 - sum w (y - yhat)^2 / sum w (y - ybar)^2 (sklearn's
    ``score`` with ``sample_weight``; 1 when y is constant and fitted exactly).
    """
    z, y, w = (np.asarray(a, dtype=np.float64) for a in (z, y, w))
    total = w.sum()
    z_mean, y_mean = w @ z / total, w @ y / total
    zc, yc = z - z_mean, y - y_mean
    gram = zc.T @ (zc * w[:, None]) + alpha * np.eye(z.shape[1])
    beta = np.linalg.solve(gram, zc.T @ (w * yc))
    intercept = float(y_mean - z_mean @ beta)
    residual = float(w @ (y - intercept - z @ beta) ** 2)
    spread = float(w @ (y - y_mean) ** 2)
    r2 = 1.0 - residual / spread if spread > 0 else (1.0 if residual == 0 else 0.0)
    return beta, intercept, r2


# --- text ---------------------------------------------------------------------------------------


def text_units(tokenizer, prepared, unit: str) -> list[list[int]]:
    """Token positions of each hideable piece: single non-special tokens, or the words the result shows
    (``token_word`` of :func:`explainers.text_words.merge_words`, called as :mod:`explainers.text` calls it)."""
    from explainers.text_words import detect_scheme, merge_words

    if unit == "token":
        return [[i] for i, special in enumerate(prepared.special) if not special]
    _, _, token_word = merge_words(prepared.tokens, prepared.special, np.zeros(len(prepared.tokens)),
                                   detect_scheme(tokenizer, prepared.tokens), tokenizer, text=prepared.text)
    units: list[list[int]] = [[] for _ in range(max(token_word, default=-1) + 1)]
    for i, word in enumerate(token_word):
        if word >= 0:
            units[word].append(i)
    return units


def _token_id(tokenizer, baseline: str) -> int:
    token = tokenizer.mask_token_id if baseline == "mask" else tokenizer.pad_token_id
    if token is None:
        raise ExplainerError(f"This tokenizer has no {baseline} token; choose baseline='remove'.")
    return int(token)


def text_copies(tokenizer, prepared, units: Sequence[Sequence[int]], keep: torch.Tensor, baseline: str) -> dict[str, torch.Tensor]:
    """Model inputs (N, T') for the copies of ``prepared`` that keep the units where ``keep`` (N, d) is True.

    ``"remove"``: hidden tokens are deleted and each copy right-padded (pad id, attention mask 0,
    so the kept tokens read exactly as the shorter text); ``"mask"`` / ``"pad"``: hidden tokens are
    replaced by that token id, the attention mask kept.
    """
    ids = prepared.inputs["input_ids"][0]
    length = ids.shape[0]
    hidden = torch.zeros(keep.shape[0], length, dtype=torch.bool, device=ids.device)
    for j, unit in enumerate(units):
        hidden[:, list(unit)] |= ~keep[:, j : j + 1].to(ids.device)
    rows = {name: value[0].expand(keep.shape[0], -1) for name, value in prepared.inputs.items()}
    if baseline != "remove":
        out = dict(rows)
        out["input_ids"] = torch.where(hidden, torch.full_like(ids, _token_id(tokenizer, baseline)), rows["input_ids"])
        return out
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    kept = ~hidden & (rows.get("attention_mask", torch.ones_like(hidden, dtype=torch.long)) > 0)
    width = int(kept.sum(dim=1).max())
    # Stable sort puts kept tokens first, in their order: the shorter text, right-padded.
    order = torch.sort((~kept).to(torch.int8), dim=1, stable=True).indices[:, :width]
    valid = torch.gather(kept, 1, order)
    out = {}
    for name, value in rows.items():
        gathered = torch.gather(value, 1, order)
        filler = pad if name == "input_ids" else 0
        out[name] = torch.where(valid, gathered, torch.full_like(gathered, filler))
    if "attention_mask" not in out:
        out["attention_mask"] = valid.long()
    return out


def text_scores(model: nn.Module, tokenizer, prepared, units: Sequence[Sequence[int]], keep: torch.Tensor, target: int,
                options: dict[str, Any], key: Hashable) -> torch.Tensor:
    """Target scores (N,) of the text copies ``keep`` (N, d) describes, in no-grad chunks."""
    call = no_grad_forward(model)

    def forward(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = call(**inputs)
        logits = getattr(logits, "logits", logits)
        return target_scores(logits, torch.full((logits.shape[0],), target, device=logits.device), options["score"])

    def run(start: int, stop: int) -> torch.Tensor:
        return forward(text_copies(tokenizer, prepared, units, keep[start:stop], options["baseline"]))

    row = bytes_per_row(model, key, lambda: forward(text_copies(tokenizer, prepared, units, keep[:1], options["baseline"])))
    return forward_in_chunks(run, keep.shape[0], row, options["memory_mb"], options.get("progress"),
                             options.get("batch_size"), device_of(model))


def spread_over_tokens(values: np.ndarray | torch.Tensor, units: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    """Per-token scores (length,) from one value per unit, split equally over its tokens (so a
    word's score, the sum of its pieces', is the unit's value); special tokens get 0."""
    out = torch.zeros(length, dtype=torch.float64)
    for value, unit in zip(torch.as_tensor(values, dtype=torch.float64).tolist(), units, strict=True):
        out[list(unit)] = value / len(unit)
    return out


def check_text_units(units: Sequence[Sequence[int]]) -> None:
    if not units:
        raise ExplainerError("The text has no words to hide (only special tokens): type a sentence to explain.")
