"""Quadrature rules on [0, 1]: nodes ``alphas`` and ``weights`` with sum(w * f(alpha)) ~ integral.

Used by Integrated Gradients (a path integral from a baseline to the input) for images and
text alike. Each rule returns float64 tensors of length ``steps``.

- Gauss-Legendre (the default for IG): exact for polynomials of degree <= 2*steps - 1, so it
  needs far fewer steps than a Riemann sum for the same error on smooth paths. Nodes are the
  roots of the Legendre polynomial P_steps mapped from [-1, 1] to [0, 1]
  (``alpha = (1 + t) / 2``, ``w = w_t / 2``), as ``numpy.polynomial.legendre.leggauss`` gives
  them (Golub-Welsch); captum's ``method="gausslegendre"`` uses the same nodes.
- Riemann sums: left, right and middle points of ``steps`` equal cells (weights ``1/steps``),
  and the trapezoid rule (``steps`` points from 0 to 1, end weights halved), as in
  Sundararajan et al. 2017 and captum's ``riemann_*`` methods.
"""

from __future__ import annotations

import numpy as np
import torch

from explainers.errors import ExplainerError

Rule = tuple[torch.Tensor, torch.Tensor]


def gauss_legendre(steps: int) -> Rule:
    """Gauss-Legendre nodes and weights on [0, 1]; exact up to polynomial degree 2*steps - 1."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return torch.from_numpy(0.5 * (nodes + 1.0)), torch.from_numpy(0.5 * weights)


def riemann(steps: int, kind: str = "middle") -> Rule:
    """Riemann sum on [0, 1] at the ``left``, ``right`` or ``middle`` of equal cells, or ``trapezoid``."""
    if kind == "trapezoid":
        if steps < 2:
            raise ExplainerError("The trapezoid rule needs at least 2 steps.")
        alphas = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
        weights = torch.full((steps,), 1.0 / (steps - 1), dtype=torch.float64)
        weights[[0, -1]] /= 2
        return alphas, weights
    offsets = {"left": 0.0, "middle": 0.5, "right": 1.0}
    if kind not in offsets:
        raise ExplainerError(f"Unknown Riemann rule {kind!r}; choose left, right, middle or trapezoid.")
    alphas = (torch.arange(steps, dtype=torch.float64) + offsets[kind]) / steps
    return alphas, torch.full((steps,), 1.0 / steps, dtype=torch.float64)


RULES = {
    "gauss_legendre": gauss_legendre,
    "riemann_left": lambda steps: riemann(steps, "left"),
    "riemann_middle": lambda steps: riemann(steps, "middle"),
    "riemann_right": lambda steps: riemann(steps, "right"),
    "riemann_trapezoid": lambda steps: riemann(steps, "trapezoid"),
}
"""Rule name -> ``steps -> (alphas, weights)``."""


def quadrature(rule: str, steps: int) -> Rule:
    """Nodes and weights of the named rule (a key of :data:`RULES`)."""
    if rule not in RULES:
        raise ExplainerError(f"Unknown quadrature rule {rule!r}; choose one of {', '.join(RULES)}.")
    return RULES[rule](steps)
