"""Gradients of the target score at many inputs, computed in chunks sized to a memory budget.

SmoothGrad (noisy copies), Integrated Gradients (points on a path) and Smooth Grad-CAM++ all
need d score / d (input or layer output) at ``count`` variants of a batch. :func:`chunked_gradients`
stacks variants into batches, runs one forward and one ``autograd.grad`` per chunk, and hands
each chunk's gradients to the caller's ``accumulate`` (nothing is kept per sample).

Chunk size: the first chunk holds one variant (B items) and measures what autograd saves for
its backward (``saved_tensors_hooks``, parameters excluded); later chunks hold as many variants
as fit ``memory_mb`` at twice that figure per variant (the saved graph plus the gradients
flowing back). The numbers do not depend on the chunking, only the speed does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import nn

from explainers.capture import capture, layer_output, preserved_state
from explainers.folded import gradient_net, to_layout
from explainers.precision import autocast
from explainers.targets import TargetSpec, resolve_targets, target_scores

Progress = Callable[[int, int], None] | None
Accumulate = Callable[[int, int, torch.Tensor, torch.Tensor], None]
"""``accumulate(start, stop, grads (S, B, ...), targets (S, B))`` for variants start..stop-1."""
Scores = Callable[[int, int, torch.Tensor], None] | None
"""``scores(start, stop, values (S, B))``: the target scores of variants start..stop-1, detached."""


@contextmanager
def saved_bytes(model: nn.Module) -> Iterator[list[int]]:
    """Count the bytes autograd saves for backward inside the block (parameters/buffers excluded)."""
    exclude = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    seen: set[int] = set()
    total = [0]

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key not in exclude and key not in seen:
            seen.add(key)
            total[0] += storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield total


def chunked_gradients(
    model: nn.Module,
    make_inputs: Callable[[int, int], torch.Tensor],
    count: int,
    target: TargetSpec,
    accumulate: Accumulate,
    *,
    layer: str | None = None,
    score: str = "logit",
    memory_mb: float = 1024.0,
    progress: Progress = None,
    scores: Scores = None,
    precision: str = "float32",
    fold: bool = False,
) -> None:
    """Gradient of each variant's target score, to the input (``layer=None``) or to ``layer``'s output.

    ``make_inputs(start, stop)`` returns variants start..stop-1 as (S, B, C, H, W). ``target`` is
    resolved per variant (None: that variant's own top class). ``progress(done, count)`` is
    called after each chunk. The model is left as found (see :mod:`explainers.capture`).

    ``fold=True`` (SmoothGrad, IG: many gradients to the input) runs on
    :func:`explainers.folded.gradient_net` (BatchNorm folded, channels_last): the same function
    in about 0.75-0.85x the time on a CPU, for a one-off copy of the network (0.15-0.25 s).
    ``precision="bfloat16"`` runs the forwards under autocast (:mod:`explainers.precision`).
    """
    budget = memory_mb * 2**20
    context = capture(model, [layer], detach=True) if layer else preserved_state(model)
    with context as captured:
        net = gradient_net(model) if fold and layer is None else model
        done, size = 0, 1
        while done < count:
            stop = min(count, done + size)
            inputs = make_inputs(done, stop)
            variants, items = inputs.shape[:2]
            batch = inputs.reshape(variants * items, *inputs.shape[2:])
            if layer is None:
                batch = to_layout(net, model, batch).requires_grad_()
            with saved_bytes(net) if done == 0 else nullcontext() as measured, autocast(precision, batch.device):
                logits = net(batch).to(inputs.dtype)
            per_variant = logits.view(variants, items, -1)
            targets = torch.stack([resolve_targets(row, target) for row in per_variant])
            chosen = target_scores(logits, targets.reshape(-1), score)
            if scores is not None:
                scores(done, stop, chosen.detach().view(variants, items))
            wrt = layer_output(captured, layer) if layer else batch
            (grads,) = torch.autograd.grad(chosen.sum(), wrt)
            accumulate(done, stop, grads.reshape(variants, items, *grads.shape[1:]), targets)
            del logits, chosen, wrt, grads
            if measured is not None:
                size = max(1, int(budget // max(2 * measured[0], 1)))
            done = stop
            if progress is not None:
                progress(done, count)


def noise_generator(seed: int | None, device: torch.device) -> torch.Generator:
    """A generator seeded with ``seed``, or from fresh entropy when ``seed`` is None."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def noisy_inputs(x: torch.Tensor, noise_level: float, generator: torch.Generator) -> Callable[[int, int], torch.Tensor]:
    """``make_inputs`` for x + N(0, sigma^2), sigma = noise_level * (max - min) of each item.

    The spread follows SmoothGrad (Smilkov et al. 2017, "noise level sigma / (x_max - x_min)").
    Noise is drawn one variant at a time in order, so a seed gives the same samples whatever
    the chunk sizes.
    """
    sigma = noise_level * (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1)

    def make(start: int, stop: int) -> torch.Tensor:
        noise = [torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) for _ in range(start, stop)]
        return x + sigma * torch.stack(noise)

    return make


def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of ``x`` from one forward without a graph, with the model in eval mode."""
    with preserved_state(model), torch.no_grad():
        return model(x)
