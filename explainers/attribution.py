"""The results methods return: :class:`Explanation` is the base type of image and text results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


class Explanation:
    """What every result has: ``method`` (its registry name), ``options`` (in effect, defaults
    filled in) and ``extras``; :attr:`record` is the method's registry record (label, flags...)."""

    method: str
    options: dict[str, Any]
    extras: dict[str, Any]

    @property
    def record(self):
        from explainers.registry import method

        return method(self.method)


@dataclass
class Attribution(Explanation):
    """Attribution maps for a batch, with what produced them.

    - ``maps``: (B, H, W) at input resolution, raw values (never normalised; signed where the
      method is signed: CAM, Integrated Gradients).
    - ``raw``: (B, h, w) at the target layer's own resolution (CAM family), else None.
    - ``pixel``: (B, C, H, W) per input channel (input-gradient methods), else None.
    - ``targets``: the class explained for each item; ``method``, ``layer``, ``options`` (the
      options in effect, defaults filled in) say how; ``extras`` holds method-specific
      figures (e.g. Integrated Gradients' convergence ``delta`` per item).

    All tensors are detached (no autograd graph is kept alive) and on the input's device.
    """

    maps: torch.Tensor
    targets: list[int]
    method: str
    layer: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    raw: torch.Tensor | None = None
    pixel: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)
