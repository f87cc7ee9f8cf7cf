"""Capturing chosen modules' outputs during one forward, leaving the model as it was found.

``capture(model, ["layer4"])`` registers forward hooks on the named modules, records each
one's output during every forward run inside the ``with`` block, and removes the hooks in
``finally``; the model's ``training`` flags, every parameter's ``requires_grad``, and the
autograd mode are restored however the block ends (an exception in the model included).

With ``detach=True`` the recorded output is a fresh leaf, ``out.detach().requires_grad_()``,
and the rest of the network receives a copy of it. Gradients then stop at the layer: the part
before it runs with autograd off (switched off when the model's forward starts, back on at the
layer and when the forward ends), so a gradient to the layer costs about one forward (the graph
only spans layer -> logits). The
copy keeps the recorded tensor intact when the next module works in place (``ReLU(inplace)``).

Any module whose output is a tensor, or a tuple/list whose first item is a tensor (e.g. a
transformer block), can be captured; the first item is what is recorded.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from explainers.errors import ExplainerError


def find_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (as in ``model.named_modules()``), or a clear error."""
    modules = dict(model.named_modules())
    if name not in modules:
        candidates = [n for n in modules if n]
        shown = ", ".join(candidates[-12:])
        more = f" (last 12 of {len(candidates)})" if len(candidates) > 12 else ""
        raise ExplainerError(f"No layer named {name!r}; candidates{more}: {shown}.")
    return modules[name]


_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model: nn.Module) -> threading.RLock:
    """The re-entrant lock that serialises explainer work on ``model`` across threads.

    Hooks and the train/eval and ``requires_grad`` flags live on the (possibly shared) model,
    so two threads explaining with one model at once would see each other's hooks and restore
    each other's flags; every block that touches them holds this lock.
    """
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@contextmanager
def preserved_state(model: nn.Module, *, eval_mode: bool = True, freeze: bool = True) -> Iterator[None]:
    """Run the block with ``model`` in eval mode and its parameters frozen, then restore both.

    Freezing (``requires_grad=False``) stops autograd from saving anything for parameter
    gradients, which no attribution needs. Autograd is switched on inside the block (callers
    may be under ``torch.no_grad()``) and the previous mode is restored afterwards. The block holds
    :func:`model_lock`, so it is safe to call from several threads with one model.
    """
    with model_lock(model):
        yield from _preserved(model, eval_mode, freeze)


def _preserved(model: nn.Module, eval_mode: bool, freeze: bool) -> Iterator[None]:
    training = {m: m.training for m in model.modules()}
    flags = {p: p.requires_grad for p in model.parameters()}
    grad_mode = torch.is_grad_enabled()
    try:
        if eval_mode:
            model.eval()
        if freeze:
            for p in flags:
                p.requires_grad_(False)
        torch.set_grad_enabled(True)
        yield
    finally:
        torch.set_grad_enabled(grad_mode)
        for p, flag in flags.items():
            p.requires_grad_(flag)
        for m, flag in training.items():
            m.training = flag


@contextmanager
def hooks(
    model: nn.Module,
    forward: Sequence[tuple[nn.Module, Callable]] = (),
    pre: Sequence[tuple[nn.Module, Callable]] = (),
) -> Iterator[None]:
    """Register forward hooks and forward pre-hooks ``(module, fn)`` for the block, holding
    :func:`model_lock`; every handle is removed in ``finally``. The one place hooks are added."""
    handles = []
    with model_lock(model):
        try:
            for module, fn in pre:
                handles.append(module.register_forward_pre_hook(fn))
            for module, fn in forward:
                handles.append(module.register_forward_hook(fn))
            yield
        finally:
            for handle in handles:
                handle.remove()


class Captured(dict):
    """Layer name -> the output recorded during the latest forward (cleared as each starts)."""


@contextmanager
def capture(
    model: nn.Module,
    layers: Sequence[str],
    *,
    detach: bool = False,
    eval_mode: bool = True,
    freeze: bool = True,
) -> Iterator[Captured]:
    """Record the outputs of ``layers`` in every forward of ``model`` run inside the block.

    Yields a dict (name -> tensor) refilled at each call of ``model``. A layer that runs twice
    in one forward (a shared module) is refused, because its output would be ambiguous.
    ``detach``, ``eval_mode`` and ``freeze`` are described in the module docstring and
    :func:`preserved_state`.
    """
    modules = {name: find_module(model, name) for name in layers}
    captured = Captured()

    def start(_module, _inputs) -> None:
        captured.clear()
        if detach:
            torch.set_grad_enabled(False)  # nothing before the layer needs a graph

    def finish(_module, _inputs, _output) -> None:
        torch.set_grad_enabled(True)

    def recorder(name: str):
        def hook(_module, _inputs, output):
            first = output[0] if isinstance(output, (tuple, list)) and output else output
            if not isinstance(first, torch.Tensor):
                raise ExplainerError(f"Layer {name!r} does not output a tensor; pick another layer.")
            if name in captured:
                raise ExplainerError(
                    f"Layer {name!r} runs more than once in one forward (a shared module), so "
                    "its output is ambiguous; pick a layer that is used once."
                )
            if detach:
                torch.set_grad_enabled(True)
            recorded = first.detach().requires_grad_() if detach else first
            captured[name] = recorded
            passed_on = recorded.clone()
            if first is output:
                return passed_on
            return type(output)([passed_on, *output[1:]]) if isinstance(output, list) else (passed_on, *output[1:])

        return hook

    recorders = [(module, recorder(name)) for name, module in modules.items()]
    with preserved_state(model, eval_mode=eval_mode, freeze=freeze), \
            hooks(model, forward=[(model, finish), *recorders], pre=[(model, start)]):
        try:
            yield captured
        finally:
            captured.clear()


class _RowSparseLinear(torch.autograd.Function):
    """y = x W^T + b, already computed by the module; backward dL/dx = G W for the non-zero rows of G only."""

    @staticmethod
    def forward(ctx, _x: torch.Tensor, weight: torch.Tensor, output: list[torch.Tensor]) -> torch.Tensor:
        ctx.save_for_backward(weight)
        return output.pop()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (weight,) = ctx.saved_tensors
        flat = grad.reshape(-1, grad.shape[-1])
        rows = flat.ne(0).any(dim=1).nonzero()[:, 0]
        if rows.numel() == flat.shape[0]:
            return grad.matmul(weight), None, None
        found = flat.new_zeros(flat.shape[0], weight.shape[1])
        found[rows] = flat[rows].mm(weight)
        return found.view(*grad.shape[:-1], weight.shape[1]), None, None


def _row_sparse_hook(module: nn.Linear, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
    """Route a frozen ``nn.Linear``'s backward through :class:`_RowSparseLinear` (its output unchanged)."""
    x, weight, bias = inputs[0] if inputs else None, module.weight, module.bias
    if not (isinstance(x, torch.Tensor) and x.requires_grad and torch.is_grad_enabled()
            and not weight.requires_grad and (bias is None or not bias.requires_grad)
            and isinstance(output, torch.Tensor) and output.dtype == weight.dtype == x.dtype):
        return None
    return _RowSparseLinear.apply(x, weight, [output.detach()])


@contextmanager
def row_sparse_linears(model: nn.Module) -> Iterator[None]:
    """In the block, frozen ``nn.Linear`` layers backpropagate only the rows of their output gradient G
    that are non-zero: dL/dx = G W row by row, and a zero row of G gives a zero row of G W (W finite),
    so the gradient is the same; autograd would multiply every row. A classifier that reads one token
    (ViT's class token) sends a gradient to one of T rows of each token-wise Linear after the layer,
    so their backward costs 1/T; dense gradients (CNN heads, Swin's pooled tokens) take the usual
    product. Only plain ``nn.Linear`` modules (``forward`` not overridden) without forward hooks of
    their own are routed, and none while a global forward hook is registered (another hook may change
    the output), and only while their input needs a gradient and their weights do not; the forward is
    not repeated (the module's output is reused).
    """
    linears = [] if nn.modules.module._global_forward_hooks else [
        m for m in model.modules()
        if isinstance(m, nn.Linear) and type(m).forward is nn.Linear.forward and not m._forward_hooks]
    with hooks(model, forward=[(m, _row_sparse_hook) for m in linears]):
        yield


def layer_output(captured: Captured, name: str) -> torch.Tensor:
    """The recorded output of ``name`` in the latest forward, or a clear error if it never ran."""
    if name not in captured:
        raise ExplainerError(f"Layer {name!r} was not used in the forward pass; pick a layer the model runs.")
    return captured[name]
