"""RISE: Randomized Input Sampling for Explanation (Petsiuk et al. 2018)."""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from explainers import perturbation as pert
from explainers.attribution import Attribution
from explainers.engine import noise_generator
from explainers.errors import ExplainerError
from explainers.options import Option, count, number
from explainers.registry import Method, register


def mask_draws(samples: int, cells: int, keep: float, generator: torch.Generator,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The random part of RISE's masks: binary grids (N, cells, cells), a cell kept with probability
    ``keep``, and shifts (N, 2) as fractions in [0, 1) of a cell (drawn in that order)."""
    grids = (torch.rand(samples, cells, cells, generator=generator, device=device) < keep).float()
    shifts = torch.rand(samples, 2, generator=generator, device=device)
    return grids, shifts


def cell_size(height: int, width: int, cells: int) -> tuple[int, int]:
    """Up-sampled cell size C = ceil(side / cells) (section 3.2)."""
    return math.ceil(height / cells), math.ceil(width / cells)


def upsampling(cells: int, size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(size, cells) bilinear interpolation weights with half-pixel centres, src = (i + 0.5) cells / size - 0.5,
    and mirror edges (the grid reflected without repeating its edge cell: scikit-image's ``mode="reflect"``,
    which the paper's code uses)."""
    src = (torch.arange(size, dtype=torch.float64) + 0.5) * cells / size - 0.5
    low = torch.floor(src)
    frac = src - low
    low = low.long()

    def mirror(i: torch.Tensor) -> torch.Tensor:
        return torch.where(i < 0, -i, torch.where(i > cells - 1, 2 * (cells - 1) - i, i)) if cells > 1 else i * 0

    weights = torch.zeros(size, cells, dtype=torch.float64)
    rows = torch.arange(size)
    weights.index_put_((rows, mirror(low)), 1 - frac, accumulate=True)
    weights.index_put_((rows, mirror(low + 1)), frac, accumulate=True)
    return weights.to(dtype=dtype, device=device)


def masks_of(grids: torch.Tensor, shifts: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Masks (n, H, W) in [0, 1]: each grid bilinearly up-sampled to ((cells + 1) C_h, (cells + 1) C_w)
    (:func:`upsampling`, as scikit-image's ``resize(order=1, mode="reflect")`` in the paper's code) and
    cropped at the shift, floor(shift * C) pixels down and right: U_y[dy : dy + H] G U_x[dx : dx + W]^T."""
    cells = grids.shape[-1]
    ch, cw = cell_size(height, width, cells)
    up_y = upsampling(cells, (cells + 1) * ch, grids.dtype, grids.device)
    up_x = upsampling(cells, (cells + 1) * cw, grids.dtype, grids.device)
    dy = (shifts[:, 0] * ch).long()[:, None] + torch.arange(height, device=grids.device)
    dx = (shifts[:, 1] * cw).long()[:, None] + torch.arange(width, device=grids.device)
    return torch.einsum("nhc,ncd,nwd->nhw", up_y[dy], grids, up_x[dx])


@register
class RISE(Method):
    """S(p) = 1 / (N keep) * sum_i s(x * M_i + fill * (1 - M_i)) M_i(p) (eq. 6, Monte Carlo): N random masks
    M_i, each a ``cells`` x ``cells`` binary grid (cells kept with probability ``keep``) bilinearly
    up-sampled and randomly shifted by less than a cell; s = the target's probability by default (the
    paper's). Defaults: N = 2000 masks, 7 x 7 cells, keep = 0.5 (the paper used 4000-8000 masks and 7 x 7
    for ResNet-50). One no-grad forward per mask, batched; seeded."""

    name = "rise"
    label = "RISE"
    caption = "Bright areas are those whose visibility, over thousands of random partial views, goes with a high class score."
    details = ("Model-agnostic: every forward shows the model a randomly masked photo; the map is the score-weighted "
               "average of the masks. Blobby at the scale of the mask cells, and noisy with few masks.")
    source = "Petsiuk, Das & Saenko 2018, RISE: Randomized Input Sampling for Explanation of Black-box Models (BMVC)"
    family = "perturbation"
    needs_gradients = False
    model_agnostic = True
    slow = True
    options: ClassVar = {
        "samples": Option(2000, count("samples"), "random masks (forwards per image)"),
        "cells": Option(7, count("cells", 2, 64), "mask grid side: cells x cells before up-sampling"),
        "keep": Option(0.5, number("keep", 0.0, False, 1.0), "probability a cell is visible"),
        "score": pert.PROBABILITY, **pert.FILL, **pert.RUN,
    }

    def forwards(self, shape, options=None, kind="image"):
        return int(shape[0]) * pert.with_defaults(self.options, options)["samples"]

    def explain_image(self, model, x, target, options):
        height, width = x.shape[2:]
        if options["cells"] > min(height, width):
            raise ExplainerError(f"cells={options['cells']} is more than the image's side ({min(height, width)} pixels).")
        targets, _ = pert.item_targets(model, x, target)
        seed = pert.seed_for(options["seed"])
        fill = pert.fill_of(x, options, seed)
        n, keep = options["samples"], options["keep"]
        generator = noise_generator(seed, x.device)
        maps = []
        for item in range(x.shape[0]):
            grids, shifts = mask_draws(n, options["cells"], keep, generator, x.device)
            total = torch.zeros(height * width, dtype=torch.float64, device=x.device)
            chunk: dict[str, torch.Tensor] = {}

            def make(start: int, stop: int, item: int = item) -> torch.Tensor:
                chunk["masks"] = masks = masks_of(grids[start:stop], shifts[start:stop], height, width).to(x.dtype)
                return fill[item] + (x[item] - fill[item]) * masks[:, None]

            def weigh(_start: int, _stop: int, scores: torch.Tensor, total: torch.Tensor = total) -> None:
                total += scores.double() @ chunk["masks"].flatten(1).double()

            pert.image_scores(model, make, n, int(targets[item]), options, ("rise", tuple(x.shape[1:])),
                              pert.item_progress(options, item, x.shape[0]), each=weigh)
            maps.append((total / (n * keep)).view(height, width).to(x.dtype))
        return Attribution(torch.stack(maps), targets.tolist(), self.name, extras={"seed": seed, "forwards": n})
