"""Occlusion (Zeiler & Fergus 2014) for images; leave-one-out (occlusion per word or token) for text."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from explainers import incremental
from explainers import perturbation as pert
from explainers.attribution import Attribution
from explainers.engine import image_forward
from explainers.errors import ExplainerError
from explainers.folded import to_layout
from explainers.options import MEMORY, PROGRESS, SCORE, Option, flag
from explainers.registry import Method, register
from explainers.targets import target_scores


def check_size(name: str):
    """A whole number >= 1, or a pair (height, width) of them."""
    def check(value: Any) -> None:
        values = value if isinstance(value, (tuple, list)) and len(value) == 2 else (value,)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise ExplainerError(f"{name} must be a whole number of pixels >= 1 (or a pair height, width), got {value!r}.")
    return check


def pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


def starts(size: int, window: int, stride: int) -> list[int]:
    """Window origins along one side, as captum's Occlusion: 1 + ceil((size - window) / stride) of them,
    every ``stride`` pixels; the last window may stick out of the image and is clipped."""
    return [k * stride for k in range(1 + math.ceil((size - window) / stride))]


def windows(shape: tuple[int, ...], options: dict[str, Any]) -> list[tuple[int, int]]:
    """(top, left) of every window for an image of ``shape`` (..., H, W), after checking the sizes fit."""
    height, width = shape[-2:]
    (wh, ww), (sh, sw) = pair(options["window"]), pair(options["stride"])
    if wh > height or ww > width:
        raise ExplainerError(f"The occlusion window ({wh}x{ww} pixels) is larger than the image ({height}x{width}); "
                             f"choose a window of at most {min(height, width)} pixels.")
    if sh > wh or sw > ww:
        raise ExplainerError(f"The stride ({sh}x{sw}) is larger than the window ({wh}x{ww}): some pixels would never "
                             "be hidden; choose a stride of at most the window's size.")
    return [(top, left) for top in starts(height, wh, sh) for left in starts(width, ww, sw)]


def _incremental_logits(model, x, fill, boxes, make) -> Callable[[int, int], torch.Tensor] | None:
    """``logits_of(start, stop)`` of the windows ``boxes`` filled from ``fill`` by incremental inference
    (:mod:`explainers.incremental`), or None when the network cannot be cut or its middle window's
    logits (a window whose crops have no image edge to lean on) differ from its whole forward, so a
    graph the rules misread is never trusted."""
    net, call = image_forward(model)
    plan = incremental.plan_of(net)
    if plan is None:
        return None
    with torch.no_grad():
        values = plan.activations(to_layout(net, model, x))
    geometry = plan.geometry([v.shape for v in values], boxes)

    def logits_of(start: int, stop: int) -> torch.Tensor:
        chosen = boxes[start:stop]
        with torch.no_grad():
            return incremental.window_logits(plan, values, geometry, [fill[:, t:b, lf:r] for t, b, lf, r in chosen],
                                             chosen, range(start, stop))

    middle = len(boxes) // 2
    whole = call(make(middle, middle + 1))
    scale = float(whole.abs().max().clamp(min=1))
    return logits_of if torch.allclose(logits_of(middle, middle + 1), whole, rtol=1e-3, atol=1e-3 * scale) else None


@register
class Occlusion(Method):
    """Images: a window slides over the image (``window`` pixels, every ``stride``) and is filled with the
    baseline; attr(p) = mean over the windows covering p of (s(x) - s(x with the window filled)), as
    captum's Occlusion. Text: leave-one-out, attr(u) = s(text) - s(text without unit u) per word or token
    (removed, or replaced by [MASK] / [PAD]), split equally over a word's pieces. One no-grad forward per
    window or unit, batched; an image window's forward recomputes only what the window changes
    (:mod:`explainers.incremental`) unless ``incremental=False``."""

    name = "occlusion"
    label = "Occlusion"
    caption = "Red areas (or words) are those whose hiding lowers the class score, blue ones those whose hiding raises it."
    details = ("Model-agnostic: it only queries the model, one forward pass per window position (images) or per word "
               "(text, leave-one-out). Coarse: nothing smaller than the window shows.")
    source = "Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks (ECCV), section 4.2"
    family = "perturbation"
    kinds = ("image", "text")
    needs_gradients = False
    model_agnostic = True
    signed = True
    slow = True
    options: ClassVar = {
        "window": Option(16, check_size("window"), "side of the square hidden at a time, pixels (or height, width)"),
        "stride": Option(8, check_size("stride"), "step between windows, pixels (or height, width)"),
        "score": SCORE, **pert.FILL, **pert.RUN,
        "incremental": Option(True, flag("incremental"), "recompute only the part of each layer a window changes "
                              "(explainers.incremental, exact); False: a whole forward per window"),
    }
    text_options: ClassVar = {
        "unit": pert.UNIT, "baseline": pert.TEXT_FILL, "score": SCORE,
        "memory_mb": MEMORY, "batch_size": pert.BATCH_SIZE, "progress": PROGRESS,
    }

    def forwards(self, shape, options=None, kind="image"):
        chosen = pert.with_defaults(self.option_table(kind), options)
        if kind == "text":
            return int(shape[-1])  # at most one per token (a word of several pieces is one)
        return int(shape[0]) * len(windows(shape, chosen))

    def explain_image(self, model, x, target, options):
        targets, logits = pert.item_targets(model, x, target)
        clean = target_scores(logits, targets, options["score"])
        fill = pert.fill_of(x, options, options["seed"])
        found = windows(x.shape, options)
        wh, ww = pair(options["window"])
        cover = torch.zeros(x.shape[2:], dtype=x.dtype, device=x.device)
        for top, left in found:
            cover[top : top + wh, left : left + ww] += 1
        boxes = [(top, min(top + wh, x.shape[2]), left, min(left + ww, x.shape[3])) for top, left in found]
        maps, incremental_used = [], []
        for item in range(x.shape[0]):
            def make(start: int, stop: int, item: int = item) -> torch.Tensor:
                batch = x[item].expand(stop - start, *x.shape[1:]).clone()
                for row, (top, bottom, left, right) in enumerate(boxes[start:stop]):
                    batch[row, :, top:bottom, left:right] = fill[item, :, top:bottom, left:right]
                return batch

            windowed = _incremental_logits(model, x[item : item + 1], fill[item], boxes, make) if options["incremental"] else None
            incremental_used.append(windowed is not None)
            key = ("occlusion", tuple(x.shape[1:]), (wh, ww), pair(options["stride"]))
            scores = pert.image_scores(model, make, len(found), int(targets[item]), options, key,
                                       pert.item_progress(options, item, x.shape[0]), logits_of=windowed)
            drops = (clean[item] - scores).tolist()
            total = torch.zeros_like(cover)
            for drop, (top, bottom, left, right) in zip(drops, boxes, strict=True):
                total[top:bottom, left:right] += drop
            maps.append(total / cover)
        return Attribution(torch.stack(maps), targets.tolist(), self.name,
                           extras={"score": clean, "forwards": len(found), "incremental": incremental_used})

    def explain_text(self, model, tokenizer, prepared, target, options):
        units = pert.text_units(tokenizer, prepared, options["unit"])
        pert.check_text_units(units)
        keep = ~torch.eye(len(units), dtype=torch.bool)
        key = ("text_occlusion", tuple(prepared.inputs["input_ids"].shape), options["baseline"])
        scores = pert.text_scores(model, tokenizer, prepared, units, keep, target, options, key)
        clean = target_scores(prepared.logits, torch.tensor([target], device=prepared.logits.device), options["score"])
        drops = (clean - scores).cpu()
        return pert.spread_over_tokens(drops, units, len(prepared.tokens)), {"forwards": len(units), "units": len(units)}
