"""Control maps that explain nothing, scored beside every method so its numbers have a reference.

- Random maps (:func:`random_maps`): i.i.d. uniform values on the method's own grid (a CAM's layer
  grid, bilinearly upsampled as :func:`explainers.cam.upsample` upsamples a CAM; ``grid=None``: one
  value per pixel, as saliency or IG), seeded: many of them give the floor's spread.
- A Sobel edge map (:func:`sobel_map`): the gradient magnitude of the channel-mean image
  (Sobel & Feldman 1968), which ignores the model entirely.
- A centred Gaussian (:func:`centre_map`): the photographer's prior, exp(-r^2 / 2 s^2) with s a
  quarter of the shorter side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from explainers.cam import upsample
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
    generator = torch.Generator().manual_seed(seed)
    grid = check_grid(grid)
    if grid is None or tuple(grid) == tuple(size):
        return torch.rand(count, *size, generator=generator, dtype=torch.float64)
    cells = torch.rand(count, *grid, generator=generator, dtype=torch.float64)
    return upsample(cells, size)


def sobel_map(x: torch.Tensor) -> torch.Tensor:
    """(H, W) Sobel gradient magnitude sqrt(Gx^2 + Gy^2) of the channel mean of ``x`` (1, C, H, W), replicate padding."""
    grey = x[:1].double().mean(dim=1, keepdim=True)
    gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)
    kernels = torch.stack([gx, gx.T])[:, None]
    edges = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)
    return edges.pow(2).sum(dim=1)[0].sqrt()


def centre_map(size: tuple[int, int]) -> torch.Tensor:
    """(H, W) centred Gaussian exp(-((i - ci)^2 + (j - cj)^2) / 2 s^2), s = min(H, W) / 4."""
    rows, cols = (torch.arange(n, dtype=torch.float64) - (n - 1) / 2 for n in size)
    sigma = min(size) / 4
    return torch.exp(-(rows[:, None] ** 2 + cols[None, :] ** 2) / (2 * sigma**2))


def control_maps(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The Sobel and centred-Gaussian controls for the image ``x`` (1, C, H, W), keyed by their labels."""
    return {SOBEL: sobel_map(x), CENTRE: centre_map(tuple(x.shape[2:]))}
