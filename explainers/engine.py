"""Gradients of the target score at many inputs, and no-grad forwards of many inputs, in chunks
sized to a memory budget: the one engine every multi-pass method and the evaluation share.

SmoothGrad (noisy copies), Integrated Gradients (points on a path) and Smooth Grad-CAM++ all
need d score / d (input or layer output) at ``count`` variants of a batch. :func:`chunked_gradients`
stacks variants into batches, runs one forward and one ``autograd.grad`` per chunk, and hands
each chunk's gradients to the caller's ``accumulate`` (nothing is kept per sample).

Chunk size: the first chunk holds one variant (B items) and measures what autograd saves for
its backward (``saved_tensors_hooks``, parameters excluded); later chunks hold as many variants
as fit ``memory_mb`` at twice that figure per variant (the saved graph plus the gradients
flowing back). The numbers do not depend on the chunking, only the speed does.

No-grad forwards (:func:`forward_in_chunks`, perturbation methods, Score-CAM, the evaluation):
the rows a chunk may hold are ``memory_mb / bytes_per_row``, where ``bytes_per_row`` is measured
once per model and row shape by a one-row probe forward: 4 x the largest output of any module
(the layer's input, its output and temporaries, with a margin). No graph is built, so this peak,
not the sum of all layers, is what a no-grad forward holds.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import nn

from explainers.capture import capture, hooks, layer_output, preserved_state
from explainers.errors import ExplainerError
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
    input_too: bool = False,
) -> None:
    """Gradient of each variant's target score, to the input (``layer=None``) or to ``layer``'s output
    (``input_too``: to both, one backward; ``accumulate`` then gets ``(layer grads, input grads)``).

    ``make_inputs(start, stop)`` returns variants start..stop-1 as (S, B, C, H, W). ``target`` is
    resolved per variant (None: that variant's own top class). ``progress(done, count)`` is
    called after each chunk. The model is left as found (see :mod:`explainers.capture`).

    ``fold=True`` (SmoothGrad, IG: many gradients to the input) runs on
    :func:`explainers.folded.gradient_net` (BatchNorm folded, channels_last): the same function
    in about 0.75-0.85x the time on a CPU, for a one-off copy of the network (0.15-0.25 s). With a
    ``layer``, the copy is used when it keeps that module under the same name (fx keeps leaf
    modules; a container it inlined is not there), else the network itself.
    ``precision="bfloat16"`` runs the forwards under autocast (:mod:`explainers.precision`).
    """
    budget = memory_mb * 2**20
    with preserved_state(model):
        net = gradient_net(model) if fold else model
        if layer is not None and net is not model and not _calls_module(net, layer):
            net = model
        with capture(net, [layer], detach=not input_too) if layer else nullcontext() as captured:
            done, size = 0, 1
            while done < count:
                stop = min(count, done + size)
                inputs = make_inputs(done, stop)
                variants, items = inputs.shape[:2]
                batch = inputs.reshape(variants * items, *inputs.shape[2:])
                if layer is None or input_too:
                    batch = to_layout(net, model, batch).requires_grad_()
                elif net is not model:
                    batch = to_layout(net, model, batch)
                with saved_bytes(net) if done == 0 else nullcontext() as measured, autocast(precision, batch.device):
                    logits = net(batch).to(inputs.dtype)
                per_variant = logits.view(variants, items, -1)
                targets = torch.stack([resolve_targets(row, target) for row in per_variant])
                chosen = target_scores(logits, targets.reshape(-1), score)
                if scores is not None:
                    scores(done, stop, chosen.detach().view(variants, items))
                wrt = [layer_output(captured, layer)] if layer else []
                wrt += [batch] if layer is None or input_too else []
                found = [g.reshape(variants, items, *g.shape[1:]) for g in torch.autograd.grad(chosen.sum(), wrt)]
                accumulate(done, stop, tuple(found) if input_too else found[0], targets)
                del logits, chosen, wrt, found
                if measured is not None:
                    size = max(1, int(budget // max(2 * measured[0], 1)))
                done = stop
                if progress is not None:
                    progress(done, count)


def _calls_module(net: nn.Module, name: str) -> bool:
    """Whether ``net`` (an fx copy) still runs a module called ``name`` (fx keeps leaf modules, inlines containers)."""
    graph = getattr(net, "graph", None)
    return graph is not None and any(n.op == "call_module" and n.target == name for n in graph.nodes)


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


_PER_ROW: weakref.WeakKeyDictionary[nn.Module, dict[Hashable, int]] = weakref.WeakKeyDictionary()


def bytes_per_row(model: nn.Module, key: Hashable, probe: Callable[[], object]) -> int:
    """Estimated bytes one row needs in a no-grad forward; ``probe()`` runs one row (cached by ``key``)."""
    known = _PER_ROW.setdefault(model, {})
    if key not in known:
        largest = [0]

        def hook(_module, _inputs, output) -> None:
            first = output[0] if isinstance(output, (tuple, list)) and output else output
            if isinstance(first, torch.Tensor):
                largest[0] = max(largest[0], first.nbytes)

        with hooks(model, forward=[(m, hook) for m in model.modules()]), preserved_state(model), torch.no_grad():
            probe()
        known[key] = max(4 * largest[0], 1)
    return known[key]


CPU_CHUNK_MB = 64.0
"""On a CPU, no-grad chunks are also kept within this budget (:func:`bytes_per_row`'s estimate, 4 x a
row's largest activation): past it a chunk's activations fall out of the cache and every row gets
slower. Measured on 2 cores, folded channels_last copies, 224x224: EfficientNet-Lite0 15-19 ms a row
at 2-8 rows, 26 ms at 32, 34-35 ms at 64-128 (memory_mb's default gives 160); resnet50 51-57 ms at
3-8 rows, 62 ms at 64-128; resnet50 at 64x64: 16-22 ms a row at 64 rows against 23-37 ms at 128-512."""


def forward_in_chunks(
    run: Callable[[int, int], torch.Tensor], rows: int, row_bytes: int, memory_mb: float, progress: Progress = None,
    batch_size: int | None = None, device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``cat([run(start, stop) ...])`` over chunks of ``max(1, budget MiB // row_bytes)`` rows, the
    budget being ``memory_mb`` (on a CPU at most :data:`CPU_CHUNK_MB`), or exactly ``batch_size`` rows
    when given.

    ``run`` builds and forwards rows start..stop-1 on ``device`` (the caller runs its model under
    :func:`preserved_state` and ``no_grad``, e.g. with :func:`no_grad_forward`);
    ``progress(done, rows)`` after each chunk.
    """
    if not memory_mb > 0:
        raise ExplainerError(f"memory_mb must be > 0, got {memory_mb}.")
    budget = min(memory_mb, CPU_CHUNK_MB) if torch.device(device).type == "cpu" else memory_mb
    size = batch_size or max(1, int(budget * 2**20 // row_bytes))
    out = []
    for start in range(0, rows, size):
        stop = min(rows, start + size)
        out.append(run(start, stop))
        if progress is not None:
            progress(stop, rows)
    return torch.cat(out)


def device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (the CPU for a model without any)."""
    return next((t.device for t in model.parameters()), torch.device("cpu"))


def no_grad_forward(model: nn.Module) -> Callable[..., object]:
    """``model`` called in eval mode without a graph, its state restored after each call."""
    def call(*args, **kwargs):
        with preserved_state(model), torch.no_grad():
            return model(*args, **kwargs)
    return call


def image_forward(model: nn.Module) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """``(net, call)``: the folded channels_last copy (:func:`explainers.folded.gradient_net`) and
    ``call(batch)``, its no-grad forward of ``batch`` in the copy's layout. The one home of the no-grad
    image forwards that perturbation methods and the evaluation make (the same function as ``model``
    up to float32 rounding; on this CPU 0.6-0.8x its time)."""
    net = gradient_net(model)
    forward = no_grad_forward(net)
    return net, lambda batch: forward(to_layout(net, model, batch))
