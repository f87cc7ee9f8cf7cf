"""The CAM family: class activation maps from a layer's activations A (B, K, h, w).

Each method is a function giving channel weights w (B, K); the map is the shared step
``sum_k w_k A_k`` (ReLU for the gradient methods), upsampled bilinearly to the input
(``align_corners=False``). Gradients G = d score / d A come from one forward whose graph
starts at the layer (:func:`layer_pass`), shared by every method and target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from explainers.capture import capture, layer_output, row_sparse_linears
from explainers.errors import ExplainerError
from explainers.registry import Method
from explainers.targets import TargetSpec, resolve_targets, target_scores
from explainers.tokens import Grid, layer_grid

GRAD_CAM_PLUS_PLUS_EPS = 1e-6
"""Added to Grad-CAM++'s alpha denominator, as pytorch-grad-cam does, so 0/0 cannot occur."""


@dataclass
class LayerPass:
    """One forward's logits and layer activations, and per target spec its classes and gradients.

    ``input_gradients[i]`` (B, C, H, W): d score / d x for spec i, when the pass was asked for
    them (saliency-type methods then need no pass of their own).
    """

    logits: torch.Tensor
    activations: torch.Tensor
    targets: list[torch.Tensor]
    gradients: list[torch.Tensor | None]
    input_gradients: list[torch.Tensor | None] = field(default_factory=list)
    grid: Grid | None = None
    output: torch.Tensor | None = None


def layer_pass(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    specs: Sequence[TargetSpec] | None,
    *,
    top_k: int | None = None,
    gradients: bool = True,
    score: str = "logit",
    input_gradients: bool = False,
) -> LayerPass:
    """One forward of ``x`` and one ``autograd.grad`` per target spec to ``layer``'s output.

    The graph spans only layer -> logits (see :func:`explainers.capture.capture`, ``detach``);
    it is kept between targets (``retain_graph``) and freed after the last. Its frozen Linears
    backpropagate only the non-zero rows of their gradient (a ViT's class token: one row of T;
    :func:`explainers.capture.row_sparse_linears`). With ``top_k`` the
    specs are each item's k best classes, read from this same forward. ``input_gradients``:
    the graph spans the whole network instead and each ``autograd.grad`` also returns
    d score / d x, so saliency and input x gradient come from this same pass.

    A transformer layer's tokens (B, T, D) or channels-last (B, h, w, C) output, and its
    gradients, are read as a (B, C, h, w) map by :func:`explainers.tokens.layer_grid` (prefix
    tokens dropped); ``grid`` says how, and ``output`` keeps the layer's output as it was.
    """
    if input_gradients:
        x = x.detach().requires_grad_()
    with row_sparse_linears(model), capture(model, [layer], detach=not input_gradients) as captured:
        logits = model(x)
        output = layer_output(captured, layer)
        grid = layer_grid(model, layer, output.shape, x.shape[2:])
        if top_k is not None:
            if not 1 <= top_k <= logits.shape[1]:
                raise ExplainerError(f"top_k must be between 1 and {logits.shape[1]}, got {top_k}.")
            ranked = logits.topk(top_k, dim=1).indices
            specs = [ranked[:, k] for k in range(top_k)]
        targets = [resolve_targets(logits, spec) for spec in specs]
        grads: list[torch.Tensor | None] = []
        pixel: list[torch.Tensor | None] = []
        for i, chosen in enumerate(targets):
            if gradients or input_gradients:
                total = target_scores(logits, chosen, score).sum()
                wrt = (output, x) if input_gradients else (output,)
                found = torch.autograd.grad(total, wrt, retain_graph=i < len(targets) - 1)
                grads.append(grid.to_map(found[0]))
                pixel.append(found[1] if input_gradients else None)
            else:
                grads.append(None)
                pixel.append(None)
        output = output.detach()
        return LayerPass(logits.detach(), grid.to_map(output), targets, grads, pixel, grid, output)


def classifier_head(model: nn.Module, layer: str, activations: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The (K, C) weight W of the linear layer that CAM needs, after checking it applies.

    CAM requires ``logits = W @ mean_hw(A) + b``: global average pooling of the layer's output,
    then one linear layer. The check is literal: the last ``nn.Linear`` mapping C -> K must
    reproduce the model's logits from the mean-pooled activations; otherwise CAM is refused.
    """
    channels, classes = activations.shape[1], logits.shape[1]
    why = "CAM needs the layer to reach the logits through global average pooling and one linear layer"
    linears = [
        (name, m) for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and m.in_features == channels and m.out_features == classes
    ]
    if not linears:
        raise ExplainerError(
            f"{why} (logits = W . mean(A) + b). No linear layer of this model maps the {channels} "
            f"channels of {layer!r} to its {classes} classes. Use Grad-CAM, which works on any layer."
        )
    name, linear = linears[-1]
    pooled = activations.mean(dim=(2, 3))
    predicted = F.linear(pooled, linear.weight.detach(), None if linear.bias is None else linear.bias.detach())
    error = (predicted - logits).abs().max().item()
    if error > 1e-3 * (1.0 + logits.abs().max().item()):
        raise ExplainerError(
            f"{why} (logits = W . mean(A) + b). Mean-pooling the output of {layer!r} and applying the "
            f"linear layer {name!r} gives logits off by {error:.3g}, so something else sits between "
            "them (e.g. another layer or activation). Use Grad-CAM, which works on any layer."
        )
    return linear.weight.detach()


def cam_weights(head_weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """CAM (Zhou et al. 2016, M_c = sum_k w^c_k f_k): w_k = W[c, k], the final linear layer's weight for class c."""
    return head_weight[targets]


def grad_cam_weights(grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017, eq. 1): w_k = mean_ij dY^c/dA_k[i, j].

    The counterfactual (negative) map of section 5 passes -G here.
    """
    return grads.mean(dim=(2, 3))


def grad_cam_plus_plus_weights(
    activations: torch.Tensor, grads: torch.Tensor, grads2: torch.Tensor | None = None, grads3: torch.Tensor | None = None
) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhay et al. 2018, eq. 19 with exp(S) -> the logit), as pytorch-grad-cam:

    alpha = G^2 / (2 G^2 + sum_ab A_ab * G^3 + eps), alpha = 0 where G == 0,
    w_k = sum_ij ReLU(G_ij) * alpha_ij.
    ``grads2``/``grads3`` replace G^2/G^3 when they are averaged separately (Smooth Grad-CAM++).
    """
    grads2 = grads * grads if grads2 is None else grads2
    grads3 = grads2 * grads if grads3 is None else grads3
    activation_sums = activations.sum(dim=(2, 3), keepdim=True)
    alpha = grads2 / (2 * grads2 + activation_sums * grads3 + GRAD_CAM_PLUS_PLUS_EPS)
    alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
    return (F.relu(grads) * alpha).sum(dim=(2, 3))


def weighted_map(activations: torch.Tensor, weights: torch.Tensor, relu: bool) -> torch.Tensor:
    """sum_k w_k A_k at the layer's resolution (B, h, w), ReLU'd for the gradient methods."""
    raw = torch.einsum("bk,bkhw->bhw", weights, activations)
    return F.relu(raw) if relu else raw


def upsample(raw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) -> (B, H, W) by bilinear interpolation, ``align_corners=False``."""
    return F.interpolate(raw[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


@dataclass
class LayerMaps:
    """What a CAM-family method sees for one target spec of a shared :func:`layer_pass`.

    ``activations`` A (B, K, h, w) and ``gradients`` G = d score / d A (None when no method of the
    pass needs them), ``targets`` (B,), the pass's ``logits``, and the model, input, layer and
    options for the methods that run passes of their own. ``extras`` collects what a method
    reports (e.g. a seed). ``head()`` is CAM's classifier weight, checked once and shared.
    ``noise``: noisy-copy moments already computed for this target by a pass shared with other
    noisy methods (:func:`explainers.gradients.noisy_moments`), or None.
    ``grid``: how the layer's ``output`` (kept in its own layout, e.g. tokens) maps to A
    (:mod:`explainers.tokens`); by default A is the output itself, channels first.
    """

    model: nn.Module
    x: torch.Tensor
    layer: str
    activations: torch.Tensor
    gradients: torch.Tensor | None
    targets: torch.Tensor
    logits: torch.Tensor
    options: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict, repr=False)
    noise: dict[str, Any] | None = None
    grid: Grid | None = None
    output: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.grid is None:
            self.grid = Grid("channels_first", *self.activations.shape[2:], self.activations.shape[1])
        if self.output is None:
            self.output = self.activations

    def head(self) -> torch.Tensor:
        if "head" not in self.shared:
            self.shared["head"] = classifier_head(self.model, self.layer, self.activations, self.logits)
        return self.shared["head"]


class LayerMethod(Method):
    """A CAM-family record: its body is the formula, from a :class:`LayerMaps` to a (B, h, w) map.

    Override :meth:`weights` (channel weights w (B, K); the map is ``sum_k w_k A_k``) or
    :meth:`layer_map` (the whole map). ``relu``: the map is ReLU'd, as Grad-CAM and
    pytorch-grad-cam do for every gradient CAM. The shared step, upsampling to the input, and
    the result are done once in :mod:`explainers.api`.
    """

    family: ClassVar[str] = "cam"
    needs_layer: ClassVar[bool] = True
    shares_layer_pass: ClassVar[bool] = True
    relu: ClassVar[bool] = True

    def weights(self, p: LayerMaps) -> torch.Tensor:
        raise NotImplementedError

    def layer_map(self, p: LayerMaps) -> torch.Tensor:
        return torch.einsum("bk,bkhw->bhw", self.weights(p), p.activations)

    def raw_map(self, p: LayerMaps) -> torch.Tensor:
        raw = self.layer_map(p)
        return F.relu(raw) if self.relu else raw
