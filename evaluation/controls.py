"""Control maps that explain nothing, scored beside every method so its numbers have a reference.

- Random maps (:func:`random_maps`): the ``random`` method record's maps
  (:func:`explainers.catalog.random_map.random_cells`) drawn on the method's own grid (a CAM's layer
  grid, bilinearly upsampled as a CAM is; ``grid=None``: one value per pixel, as saliency or IG),
  seeded: many of them give the floor's spread.
- A Sobel edge map (:func:`sobel_map`): the ``sobel`` method record's edge magnitude of the
  channel-mean image (:func:`explainers.catalog.sobel.edges`, Sobel & Feldman 1968), which ignores
  the model entirely.
- A centred Gaussian (:func:`centre_map`): the photographer's prior, exp(-r^2 / 2 s^2) with s a
  quarter of the shorter side.
"""

from __future__ import annotations

import torch

from explainers.catalog.random_map import random_cells
from explainers.catalog.sobel import edges
from explainers.errors import ExplainerError

Grid = tuple[int, int] | None
SOBEL, CENTRE = "control: Sobel edges", "control: centred Gaussian"


def check_grid(grid: object) -> Grid:
    """``None`` (pixels) or a (rows, columns) pair of whole numbers >= 1."""
    if grid is None:
        return None
    if isinstance(grid, int) and not isinstance(grid, bool):
        grid = (grid, grid)
    try:
        rows, cols = (int(g) for g in grid)  # type: ignore[union-attr]
    except (TypeError, ValueError) as err:
        raise ExplainerError(f"A grid is None (pixels) or (rows, columns); got {grid!r}.") from err
    if rows < 1 or cols < 1:
        raise ExplainerError(f"A grid needs at least one row and one column; got {grid!r}.")
    return rows, cols


def random_maps(count: int, size: tuple[int, int], grid: Grid, seed: int = 0) -> torch.Tensor:
    """(count, H, W) float64 maps of i.i.d. uniform values on ``grid`` cells (bilinear upsampling) or per pixel."""
    grid = check_grid(grid)
    return random_cells(count, tuple(size), grid or tuple(size), seed, dtype=torch.float64)


def sobel_map(x: torch.Tensor) -> torch.Tensor:
    """(H, W) float64 Sobel edge magnitude of the first image of ``x`` (1, C, H, W), as the ``sobel`` record computes it."""
    return edges(x[:1].double())[0]


def centre_map(size: tuple[int, int]) -> torch.Tensor:
    """(H, W) centred Gaussian exp(-((i - ci)^2 + (j - cj)^2) / 2 s^2), s = min(H, W) / 4."""
    rows, cols = (torch.arange(n, dtype=torch.float64) - (n - 1) / 2 for n in size)
    sigma = min(size) / 4
    return torch.exp(-(rows[:, None] ** 2 + cols[None, :] ** 2) / (2 * sigma**2))


def control_maps(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The Sobel and centred-Gaussian controls for the image ``x`` (1, C, H, W), keyed by their labels."""
    return {SOBEL: sobel_map(x), CENTRE: centre_map(tuple(x.shape[2:]))}
