"""A vision transformer's attention probabilities for an image batch, and rollouts of them as maps.

:func:`attention_probabilities` runs one forward and returns every self-attention layer's
probabilities A_l (B, heads, T, T) inside the autograd graph, so their gradients can be taken:

- Hugging Face models with eager attention return them as the attention module's second output
  (recorded by a forward hook);
- torchvision's ``nn.MultiheadAttention`` (ViT) is called with ``need_weights=False``, so its output
  is replaced by the same attention computed with explicit probabilities (softmax(q k^T / sqrt(d))
  v, then the output projection; equal to the module's own result up to float rounding).

Maps (:func:`class_token_map`) are the class token's row over the patch tokens, on the patch grid
of :mod:`explainers.tokens` (prefix tokens dropped), upsampled bilinearly like the CAM family.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from explainers.attribution import Attribution
from explainers.capture import hooks, preserved_state
from explainers.errors import ExplainerError
from explainers.targets import TargetSpec, resolve_targets, target_scores
from explainers.tokens import grid_of, patch_size

NOT_VIT = ("needs a vision transformer with global self-attention over a class token and patch tokens "
           "(ViT, DeiT, BEiT); this model has none")


def _explicit_attention(module: nn.MultiheadAttention, query, key, value) -> tuple[torch.Tensor, torch.Tensor]:
    """``nn.MultiheadAttention`` (batch_first, no masks) with its probabilities (B, heads, T, T) kept."""
    if not (module.batch_first and module._qkv_same_embed_dim and module.bias_k is None and not module.add_zero_attn):
        raise ExplainerError(f"Attention maps {NOT_VIT} in the supported form (batch-first packed projections).")
    heads, width = module.num_heads, module.embed_dim
    head_dim = width // heads
    bias = module.in_proj_bias
    projected = [
        F.linear(t, module.in_proj_weight[i * width : (i + 1) * width], None if bias is None else bias[i * width : (i + 1) * width])
        .view(t.shape[0], t.shape[1], heads, head_dim).transpose(1, 2)
        for i, t in enumerate((query, key, value))
    ]
    q, k, v = projected
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), dim=-1)
    out = (probs @ v).transpose(1, 2).reshape(query.shape[0], query.shape[1], width)
    return module.out_proj(out), probs


def has_class_token_attention(model: nn.Module) -> bool:
    """Whether ``model`` looks like a ViT-style classifier: a class-token parameter (torchvision's
    ``class_token``, Hugging Face's ``cls_token``) beside self-attention modules. A structural
    check for menus, so that attention maps are not offered for CNNs or Swin; the methods
    themselves still check what the forward returns (:data:`NOT_VIT`)."""
    token = any(name.rsplit(".", 1)[-1] in ("class_token", "cls_token") for name, _ in model.named_parameters())
    attention = any(isinstance(m, nn.MultiheadAttention) or type(m).__name__.endswith("Attention")
                    for m in model.modules())
    return token and attention


def attention_probabilities(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits and every self-attention layer's probabilities (B, heads, T, T), first layer first,
    from one forward with autograd on (call inside :func:`preserved_state`)."""
    found: list[torch.Tensor] = []
    seen: set[int] = set()

    def explicit(module, inputs, _output):
        out, probs = _explicit_attention(module, *inputs[:3])
        found.append(probs)
        return out, None

    def record(_module, _inputs, output):
        if isinstance(output, tuple) and len(output) > 1 and isinstance(output[1], torch.Tensor):
            probs = output[1]
            if probs.ndim == 4 and probs.shape[-1] == probs.shape[-2] and id(probs) not in seen:
                seen.add(id(probs))
                found.append(probs)

    forward = [(m, explicit if isinstance(m, nn.MultiheadAttention) else record)
               for m in model.modules() if m is not model]
    with hooks(model, forward=forward):
        logits = model(x)
    if not found:
        kinds = {getattr(getattr(m, "config", None), "_attn_implementation", None) for m in model.modules()}
        hint = ' It returned no attention weights: load it with attn_implementation="eager".' if kinds - {None, "eager"} else ""
        raise ExplainerError(f"Attention maps {NOT_VIT}.{hint}")
    return logits, found


def patch_prefix(model: nn.Module, x: torch.Tensor, tokens: int) -> tuple[int, int, int]:
    """(prefix, h, w): the leading non-patch tokens and the patch grid of ``tokens`` tokens."""
    grid = grid_of((1, tokens, 1), tuple(x.shape[2:]), patch_size(model, x.shape[1]))
    if grid is None or grid.prefix < 1:
        raise ExplainerError(f"Attention maps {NOT_VIT} ({tokens} tokens do not form a class token and a patch grid).")
    return grid.prefix, grid.height, grid.width


def rollout(attentions: Sequence[torch.Tensor]) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020, eq. for A-hat): R = prod_l rownorm(mean_heads(A_l) + I),
    first layer rightmost; (B, T, T) from per-layer (B, heads, T, T)."""
    result = None
    for attention in attentions:
        a = attention.mean(dim=1) + torch.eye(attention.shape[-1], dtype=attention.dtype, device=attention.device)
        a = a / a.sum(dim=-1, keepdim=True)
        result = a if result is None else a @ result
    return result


def gradient_rollout(attentions: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Gradient-weighted rollout (Chefer, Gur & Wolf 2021, eq. 5-6): A-bar_l = mean_heads((dY/dA_l * A_l)^+),
    R = I, then R <- R + A-bar_l R for each layer, first layer first; (B, T, T)."""
    tokens = attentions[0].shape[-1]
    result = torch.eye(tokens, dtype=attentions[0].dtype, device=attentions[0].device).expand(attentions[0].shape[0], -1, -1)
    for attention, grad in zip(attentions, grads):
        weighted = (grad * attention).clamp_min(0).mean(dim=1)
        result = result + weighted @ result
    return result


def class_token_map(relevance: torch.Tensor, prefix: int, height: int, width: int) -> torch.Tensor:
    """Row 0 (the class token) of a (B, T, T) relevance over the patch tokens, as (B, h, w)."""
    return relevance[:, 0, prefix:].reshape(relevance.shape[0], height, width)


def attention_maps(
    model: nn.Module, x: torch.Tensor, target: TargetSpec, *, gradients: bool, score: str = "logit",
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None, torch.Tensor, tuple[int, int, int]]:
    """The attention probabilities (detached), their gradients of the targets' scores (when
    ``gradients``), the targets, and (prefix, h, w); the model is left as found."""
    with preserved_state(model):
        logits, probs = attention_probabilities(model, x.detach().requires_grad_(gradients))
        targets = resolve_targets(logits, target)
        grads = None
        if gradients:
            grads = [g.detach() for g in torch.autograd.grad(target_scores(logits, targets, score).sum(), probs)]
    layout = patch_prefix(model, x, probs[0].shape[-1])
    return [p.detach().float() for p in probs], grads, targets, layout


def image_attribution(name: str, raw: torch.Tensor, targets: torch.Tensor, x: torch.Tensor, **extras) -> Attribution:
    """An Attribution of a (B, h, w) patch map: upsampled to the input as the CAM family's maps."""
    maps = F.interpolate(raw[:, None], size=tuple(x.shape[2:]), mode="bilinear", align_corners=False)[:, 0]
    return Attribution(maps, targets.tolist(), name, raw=raw, extras=dict(extras))
