"""Incremental inference for occlusion: recompute only what a hidden window changes.

A window of occlusion changes the input in a small box, and a convolution's output at p depends
only on the inputs in p's receptive field, so through a network's convolutional stages the change
stays in a box that grows by each layer's reach (Nakandala et al. 2019, "Incremental and
Approximate Inference for Faster Occlusion-based Deep CNN Explanations", SIGMOD, the Krypton
system). Each occluded copy runs those stages on a crop around its changed box, pastes the
changed part into the clean image's activation, and runs the whole network from the first stage
where the crop would cover the whole activation.

- **Plan** (:func:`plan_of`, once per network): the network's ``torch.fx`` graph (the folded copy of
  :func:`explainers.folded.gradient_net`) is cut at nodes every path from the input passes
  through (block outputs); the cuts up to the first non-local operation (a global pool, a
  reshape, an unknown call) split it into stages. Per stage, along each axis, the receptive
  field ``(s, lo, hi)``: output i depends on the stage's input at ``i * s + lo .. i * s + hi``
  (convolutions, poolings, zero paddings compose; point-wise operations and sums keep it).
- **Crops** (:func:`Plan.geometry`): a stage's crop starts at a multiple of ``s`` (the crop's
  grid then aligns with the full one) and holds every input the changed outputs read; at the
  image's edge the crop's zero padding is the network's own. One crop size per stage (the
  largest any window needs), so copies batch.
- **Exact**: the result equals whole forwards up to float32 rounding (the convolutions see other
  shapes); :func:`window_logits` callers check the first copy against a whole forward.
"""

from __future__ import annotations

import functools
import math
import operator
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn

Axis = tuple[int, int, int]
"""``(stride, lo, hi)``: output i reads the stage's input at ``i * stride + lo .. i * stride + hi``."""
Field = tuple[Axis, Axis]
"""Receptive field along rows and columns."""
Box = tuple[int, int, int, int]
"""``(top, bottom, left, right)``, bottom and right exclusive."""

IDENTITY: Field = ((1, 0, 0), (1, 0, 0))
POINTWISE_MODULES = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid,
                     nn.Tanh, nn.LeakyReLU, nn.ELU, nn.Mish, nn.PReLU, nn.Identity, nn.Dropout, nn.Dropout2d)
TRAINING_DEPENDENT = (nn.BatchNorm2d, nn.Dropout, nn.Dropout2d)
"""Point-wise only in eval mode (batch statistics and random masks are not)."""
POINTWISE_FUNCTIONS = {operator.add, operator.mul, operator.sub, operator.truediv, torch.add, torch.mul, torch.sub,
                       torch.relu, torch.sigmoid, torch.tanh, F.relu, F.relu6, F.silu, F.gelu, F.hardswish,
                       F.hardsigmoid, F.hardtanh, F.leaky_relu}
POINTWISE_METHODS = {"relu", "sigmoid", "tanh", "add", "mul", "sub", "div", "contiguous"}


def compose(inner: Axis, step: Axis) -> Axis:
    """The field of ``step`` (output i reads ``i * s + lo .. i * s + hi`` of its input) applied after ``inner``."""
    (stride, lo, hi), (s, a, b) = inner, step
    return stride * s, a * stride + lo, b * stride + hi


def _window_step(kernel, stride, padding, dilation) -> Field:
    k, s, p, d = (nn.modules.utils._pair(v) for v in (kernel, stride, padding, dilation))
    return tuple((s[i], -p[i], -p[i] + (k[i] - 1) * d[i]) for i in range(2))


def _conv_padding(padding, kernel, dilation) -> tuple[int, int]:
    if padding == "valid":
        return 0, 0
    if padding == "same":  # torch pads d * (k - 1) in all, the smaller half first
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
    return nn.modules.utils._pair(padding)


def _step(net: fx.GraphModule, node: fx.Node) -> Field | str | None:
    """What ``node`` does to positions: a window ``Field``, ``"pointwise"``, or None (not local)."""
    if node.op == "call_module":
        module = net.get_submodule(node.target)
        if type(module) is nn.Conv2d and module.padding_mode == "zeros":
            return _window_step(module.kernel_size, module.stride,
                                _conv_padding(module.padding, module.kernel_size, module.dilation), module.dilation)
        if type(module) is nn.MaxPool2d and not module.ceil_mode and not module.return_indices:
            return _window_step(module.kernel_size, module.stride or module.kernel_size, module.padding, module.dilation)
        if type(module) is nn.AvgPool2d and not module.ceil_mode:
            return _window_step(module.kernel_size, module.stride or module.kernel_size, module.padding, 1)
        if type(module) in (nn.ZeroPad2d, nn.ConstantPad2d) and getattr(module, "value", 0) == 0:
            left, right, top, bottom = module.padding
            return ((1, -top, -top), (1, -left, -left)) if min(left, right, top, bottom) >= 0 else None
        if isinstance(module, POINTWISE_MODULES) and not (module.training and isinstance(module, TRAINING_DEPENDENT)):
            return "pointwise"
        return None
    if node.op == "call_function" and node.target in (F.conv2d, torch.conv2d):
        args = [*node.args, *[None] * 7][:7]
        weight = args[1]
        if not (isinstance(weight, fx.Node) and weight.op == "get_attr"):
            return None
        kernel = tuple(net.get_parameter(weight.target).shape[-2:])
        stride, padding, dilation = (node.kwargs.get(k, args[i] if args[i] is not None else default)
                                     for k, i, default in (("stride", 3, 1), ("padding", 4, 0), ("dilation", 5, 1)))
        dilation = nn.modules.utils._pair(dilation)
        return _window_step(kernel, stride, _conv_padding(padding, kernel, dilation), dilation)
    if node.op == "call_function" and node.target in POINTWISE_FUNCTIONS and not node.kwargs.get("inplace"):
        return "pointwise"
    if node.op == "call_method" and node.target in POINTWISE_METHODS:
        return "pointwise"
    return None


def _constant_ok(net: fx.GraphModule, node: fx.Node) -> bool:
    """A get_attr argument of a point-wise op that does not vary over positions (a scalar or (..., C, 1, 1))."""
    value = functools.reduce(getattr, node.target.split("."), net)
    return isinstance(value, torch.Tensor) and (value.numel() == 1 or (value.dim() >= 3 and value.shape[-2:] == (1, 1)))


def _batch_size_node(node: fx.Node, source: fx.Node) -> bool:
    """``source.size(0)``: the batch size, which every stage's input has as well."""
    return (node.op == "call_method" and node.target == "size" and node.args[:1] == (source,)
            and (node.args[1:] == (0,) or node.kwargs == {"dim": 0}))


def fields(net: fx.GraphModule) -> dict[fx.Node, Field]:
    """The receptive field of every local node relative to the network's input (the graph's one placeholder)."""
    known: dict[fx.Node, Field] = {}
    for node in net.graph.nodes:
        if node.op == "placeholder":
            known[node] = IDENTITY
            continue
        step = _step(net, node)
        if step is None:
            continue
        inputs = [a for a in node.all_input_nodes if a.op != "get_attr"]
        if any(a not in known for a in inputs) or not inputs:
            continue
        if step == "pointwise":
            parts = [known[a] for a in inputs]
            constants_ok = all(_constant_ok(net, a) for a in node.all_input_nodes if a.op == "get_attr")
            if not constants_ok or len({(r[0], c[0]) for r, c in parts}) != 1:
                continue
            known[node] = tuple((parts[0][i][0], min(p[i][1] for p in parts), max(p[i][2] for p in parts))
                                for i in range(2))
        elif len(inputs) == 1:
            known[node] = tuple(compose(known[inputs[0]][i], step[i]) for i in range(2))
    return known


def cuts(net: fx.GraphModule) -> list[fx.Node]:
    """Local nodes every path from the input to the output passes through, at the ends of runs of
    such nodes (block outputs), up to the first non-local operation."""
    nodes = list(net.graph.nodes)
    # parameters and the input's batch size are recreated in every stage (_segment): they cut nothing
    carried = [n.op == "get_attr" or _batch_size_node(n, nodes[0]) for n in nodes]
    index = {n: i for i, n in enumerate(nodes)}
    known = fields(net)
    cut_at, reach = [], 0  # reach: the furthest node an earlier node feeds
    for i, node in enumerate(nodes):
        cut_at.append(not carried[i] and 0 < i and reach <= i)
        if not carried[i]:
            reach = max(reach, max((index[u] for u in node.users), default=i))
    steps = [i for i in range(1, len(nodes)) if not carried[i]]
    found = []
    for i, following in zip(steps, [*steps[1:], None]):
        if nodes[i] not in known:
            break
        if cut_at[i] and (following is None or not cut_at[following] or nodes[following] not in known):
            found.append(nodes[i])
    return found


def _segment(net: fx.GraphModule, start: fx.Node, end: fx.Node | None) -> fx.GraphModule:
    """The part of ``net`` from ``start``'s value to ``end``'s (None: the network's output) as a module."""
    nodes = list(net.graph.nodes)
    source = nodes[0]
    graph = fx.Graph()
    env = {start: graph.placeholder("x")}

    def value(n: fx.Node) -> fx.Node:
        if n not in env and n.op == "get_attr":  # parameters may be read before start
            env[n] = graph.node_copy(n)
        elif n not in env and _batch_size_node(n, source):
            env[n] = graph.call_method("size", (env[start], 0))
        return env[n]

    for node in nodes[nodes.index(start) + 1 :]:
        if node.op == "output":
            graph.output(fx.node.map_arg(node.args[0], value))
            break
        if not _batch_size_node(node, source):
            env[node] = graph.node_copy(node, value)
        if node is end:
            graph.output(env[node])
            break
    module = fx.GraphModule(net, graph)
    module.graph.eliminate_dead_code()
    module.recompile()
    return module


@dataclass(frozen=True)
class Crop:
    """One stage's crops: their size, each window's crop origin, and each window's changed box at the output."""

    rows: int
    cols: int
    origins: list[tuple[int, int]]
    changed: list[Box]


def _axis_crops(size: int, out: int, axis: Axis, spans: Sequence[tuple[int, int]]) -> tuple[int, list[int], list[tuple[int, int]]]:
    """Along one axis: the crop length (a multiple of the stride, at most ``size``), each span's crop start
    and its changed span at the output, for input spans ``[a, b)`` changed."""
    s, lo, hi = axis
    needs, changed = [], []
    for a, b in spans:
        first, last = max(0, -((hi - a) // s)), min(out - 1, (b - 1 - lo) // s)  # outputs whose field meets [a, b)
        needs.append((max(0, first * s + lo) // s * s, min(size, last * s + hi + 1)))  # the inputs they read
        changed.append((first, last + 1))
    length = min(size, math.ceil(max(b - a for a, b in needs) / s) * s)
    return length, [min(a, size - length) for a, _ in needs], changed


@dataclass
class Plan:
    """A network cut into local stages (module, field); ``tails[k]`` runs stages k.. and the rest of the network."""

    stages: list[tuple[fx.GraphModule, Field]]
    tails: list[nn.Module]

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The clean input's value at every stage boundary, x first."""
        values = [x]
        for module, _ in self.stages:
            values.append(module(values[-1]))
        return values

    def geometry(self, shapes: Sequence[torch.Size], boxes: Sequence[Box]) -> tuple[int, list[Crop]]:
        """``(switch, crops)``: the stages 0..switch-1 run on crops (``crops[k]``), from stage ``switch`` on
        the whole activation; a stage is not cropped once its crop would be as large as the whole, or its
        input's size is not a multiple of its stride (the grids would not align)."""
        crops, current = [], list(boxes)
        for k, (_, field) in enumerate(self.stages):
            (height, width), (out_h, out_w) = shapes[k][-2:], shapes[k + 1][-2:]
            if height != out_h * field[0][0] or width != out_w * field[1][0]:
                break
            rows, top, changed_r = _axis_crops(height, out_h, field[0], [(t, b) for t, b, _, _ in current])
            cols, left, changed_c = _axis_crops(width, out_w, field[1], [(lf, r) for _, _, lf, r in current])
            if rows * cols >= height * width:
                break
            current = [(*r, *c) for r, c in zip(changed_r, changed_c, strict=True)]
            crops.append(Crop(rows, cols, list(zip(top, left, strict=True)), current))
        return len(crops), crops


def _pasted(batch: torch.Tensor, patches: Sequence[torch.Tensor], boxes: Sequence[Box],
            origins: Sequence[tuple[int, int]]) -> torch.Tensor:
    """A channels_last copy of ``batch`` (never a view: the clean activations must stay clean) with patch j
    written at box j, in the frame of row j's crop origin."""
    batch = batch.clone(memory_format=torch.channels_last)
    for row, (patch, (top, bottom, left, right), (dy, dx)) in enumerate(zip(patches, boxes, origins, strict=True)):
        batch[row, :, top - dy : bottom - dy, left - dx : right - dx] = patch
    return batch


def window_logits(plan: Plan, values: Sequence[torch.Tensor], geometry: tuple[int, list[Crop]],
                  patches: Sequence[torch.Tensor], boxes: Sequence[Box], rows: Sequence[int]) -> torch.Tensor:
    """Logits of the copies whose input boxes ``boxes`` hold ``patches``; ``rows`` are their indices in the
    geometry (the window numbers), ``values`` the clean activations (:meth:`Plan.activations`)."""
    switch, crops = geometry
    for k in range(switch):
        (module, ((s_r, _, _), (s_c, _, _))), crop = plan.stages[k], crops[k]
        chosen = [crop.origins[r] for r in rows]
        batch = torch.stack([values[k][0, :, t : t + crop.rows, c : c + crop.cols] for t, c in chosen])
        out = module(_pasted(batch, patches, boxes, chosen))
        boxes = [crop.changed[r] for r in rows]
        patches = [out[row, :, top - t // s_r : bottom - t // s_r, left - c // s_c : right - c // s_c]
                   for row, ((t, c), (top, bottom, left, right)) in enumerate(zip(chosen, boxes, strict=True))]
    whole = values[switch].expand(len(patches), *values[switch].shape[1:])
    return plan.tails[switch](_pasted(whole, patches, boxes, [(0, 0)] * len(patches)))


_PLANS: weakref.WeakKeyDictionary[nn.Module, Plan | None] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def plan_of(net: nn.Module) -> Plan | None:
    """``net`` (an fx ``GraphModule`` in eval mode) cut into stages (module docstring), or None when it has
    no local stage. A network in training mode is never cut: its stages would update BatchNorm statistics."""
    if any(m.training for m in net.modules()):
        return None
    with _GUARD:
        if net in _PLANS:
            return _PLANS[net]
    plan = None
    if isinstance(net, fx.GraphModule) and sum(n.op == "placeholder" for n in net.graph.nodes) == 1:
        try:
            plan = _build(net)
        except Exception:  # noqa: BLE001 - a graph these rules cannot cut runs as whole forwards
            plan = None
    with _GUARD:
        _PLANS[net] = plan
    return plan


def _build(net: fx.GraphModule) -> Plan | None:
    found = cuts(net)
    if not found:
        return None
    start = next(iter(net.graph.nodes))
    stages = []
    for end in found:
        module = _segment(net, start, end)
        local = fields(module)
        output = next(n for n in module.graph.nodes if n.op == "output").args[0]
        if output not in local:
            break
        stages.append((module, local[output]))
        start = end
    if not stages:
        return None
    rest = _segment(net, found[len(stages) - 1], None)
    tails = [nn.Sequential(*[m for m, _ in stages[k:]], rest) for k in range(len(stages) + 1)]
    return Plan(stages, tails)
