"""No-grad forwards of many model inputs in chunks sized to a memory budget.

The rows a chunk may hold are ``memory_mb / bytes_per_row``. ``bytes_per_row`` is measured
once per model and row shape by a one-row probe forward: 4 x the largest output of any module
(the layer's input, its output and temporaries, with a margin). No graph is built, so this
peak, not the sum of all layers, is what a no-grad forward holds.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable

import torch
from torch import nn

from explainers.capture import preserved_state
from explainers.errors import ExplainerError

Progress = Callable[[int, int], None] | None
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

        handles = [m.register_forward_hook(hook) for m in model.modules()]
        try:
            with preserved_state(model), torch.no_grad():
                probe()
        finally:
            for handle in handles:
                handle.remove()
        known[key] = max(4 * largest[0], 1)
    return known[key]


def forward_in_chunks(
    run: Callable[[int, int], torch.Tensor], rows: int, row_bytes: int, memory_mb: float, progress: Progress = None
) -> torch.Tensor:
    """``cat([run(start, stop) ...])`` over chunks of ``max(1, memory_mb MiB // row_bytes)`` rows.

    ``run`` builds and forwards rows start..stop-1 (the caller's model is run under
    :func:`preserved_state` and ``no_grad`` here); ``progress(done, rows)`` after each chunk.
    """
    if not memory_mb > 0:
        raise ExplainerError(f"memory_mb must be > 0, got {memory_mb}.")
    size = max(1, int(memory_mb * 2**20 // row_bytes))
    out = []
    for start in range(0, rows, size):
        stop = min(rows, start + size)
        out.append(run(start, stop))
        if progress is not None:
            progress(stop, rows)
    return torch.cat(out)


def no_grad_forward(model: nn.Module) -> Callable[..., object]:
    """``model`` called in eval mode without a graph, its state restored after each call."""
    def call(*args, **kwargs):
        with preserved_state(model), torch.no_grad():
            return model(*args, **kwargs)
    return call
