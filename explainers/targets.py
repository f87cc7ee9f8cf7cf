"""Which class each item is explained for, and the score whose gradient is taken."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from explainers.errors import ExplainerError

TargetSpec = int | Sequence[int] | torch.Tensor | None
"""None: each item's top class; an int: that class for every item; one int per item."""

SCORES = ("logit", "probability")


def resolve_targets(logits: torch.Tensor, target: TargetSpec) -> torch.Tensor:
    """(N,) long tensor of classes for logits (N, K), validated against K and N."""
    n, classes = logits.shape
    if target is None:
        return logits.argmax(dim=1)
    if isinstance(target, bool):
        raise ExplainerError("target must be None, a class index or one class index per item.")
    if isinstance(target, int):
        chosen = torch.full((n,), target, dtype=torch.long, device=logits.device)
    else:
        try:
            chosen = torch.as_tensor(list(target) if not isinstance(target, torch.Tensor) else target)
        except (TypeError, ValueError) as err:
            raise ExplainerError("target must be None, a class index or one class index per item.") from err
        if chosen.dtype.is_floating_point or chosen.dtype == torch.bool or chosen.ndim != 1:
            raise ExplainerError("target must be None, a class index or one class index per item.")
        if chosen.numel() != n:
            raise ExplainerError(f"Got {chosen.numel()} targets for {n} items; give one per item or a single int.")
        chosen = chosen.to(device=logits.device, dtype=torch.long)
    bad = (chosen < 0) | (chosen >= classes)
    if bad.any():
        raise ExplainerError(f"Target class {int(chosen[bad][0])} is out of range: the model has {classes} classes (0..{classes - 1}).")
    return chosen


def target_scores(logits: torch.Tensor, targets: torch.Tensor, score: str = "logit") -> torch.Tensor:
    """(N,) score of each item's target class.

    ``"logit"`` (default): the pre-softmax logit, as in the Grad-CAM paper (Selvaraju et al.
    2017, "y^c, the score before the softmax"), captum and pytorch-grad-cam. ``"probability"``:
    the softmax probability, whose gradient also pushes the other classes down.
    """
    if score == "probability":
        logits = torch.softmax(logits, dim=1)
    return logits.gather(1, targets[:, None])[:, 0]
