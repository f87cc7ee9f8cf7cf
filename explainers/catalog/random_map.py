"""The "random" control: a map that knows nothing about the model or the photo."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from explainers import perturbation as pert
from explainers.attribution import Attribution
from explainers.engine import noise_generator
from explainers.options import SEED, Option, count
from explainers.registry import Method, register


@register
class RandomMap(Method):
    """map = bilinear up-sampling (half-pixel centres) of U[0, 1) values on a ``cells`` x ``cells`` grid per
    item, seeded; the same whatever the model and target. A control: a method whose map looks like this
    one tells nothing (pytorch-grad-cam's RandomCAM control plays the same part)."""

    name = "random"
    label = "Random (control)"
    caption = "Random blobs that ignore the model and the photo: what a map that explains nothing looks like."
    details = "A control for comparing methods: a faithfulness score or an agreement no better than this one's means nothing."
    source = "Adebayo et al. 2018, Sanity Checks for Saliency Maps (NeurIPS): maps must be compared with model-free controls"
    family = "control"
    needs_gradients = False
    model_agnostic = True
    target_independent = True
    options: ClassVar = {
        "cells": Option(7, count("cells", 1, 4096), "grid side of the random values (the image's side: per-pixel noise)"),
        "seed": SEED,
    }

    def forwards(self, shape, options=None, kind="image"):
        return 0

    def explain_image(self, model, x, target, options):
        targets, _ = pert.item_targets(model, x, target)  # checks the target; the map does not use it
        seed = pert.seed_for(options["seed"])
        cells = min(options["cells"], x.shape[2], x.shape[3])
        maps = random_cells(x.shape[0], tuple(x.shape[2:]), (cells, cells), seed, x.device, x.dtype)
        return Attribution(maps, targets.tolist(), self.name, extras={"seed": seed})


def random_cells(count: int, size: tuple[int, int], cells: tuple[int, int], seed: int | None,
                 device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(count, H, W) maps: U[0, 1) values on a ``cells`` (rows, columns) grid per map, drawn in order from one
    generator seeded with ``seed``, bilinearly up-sampled to ``size`` (half-pixel centres; a grid of ``size``
    itself is left as drawn)."""
    device = torch.device("cpu") if device is None else device
    grid = torch.rand(count, 1, *cells, generator=noise_generator(seed, device), device=device, dtype=dtype)
    return F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[:, 0]
