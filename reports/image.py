"""Report sections for image maps: the prediction, the map grid with its colour scales, the facts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from figures.image import map_grid, topk_bar
from figures.scales import Scale, resolve_grid_scales
from reports.document import MapFacts, Section

TOP_K = 5


def scale_text(scale: Scale | None) -> str | None:
    """A colour scale in words: its label and its range."""
    if scale is None:
        return None
    return f"{scale.label}\n{scale.zmin:.4g} to {scale.zmax:.4g} ({scale.colorscale})"


def image_section(
    title: str,
    rgb: np.ndarray,
    labels: Sequence[str],
    probs: np.ndarray,
    maps: Sequence[Sequence[np.ndarray | None]],
    row_titles: Sequence[str],
    col_titles: Sequence[str],
    facts: Sequence[Sequence[MapFacts]],
    scales: Scale | Sequence[Sequence[Scale | None]] | None = None,
    opacity: float = 0.55,
    inputs: dict[str, str] | None = None,
    captions: Sequence[str] = (),
) -> Section:
    """A :class:`Section` for one photo: top-5 bar chart and the rows x columns map grid
    (:func:`figures.image.map_grid`, same ``scales`` and ``opacity`` as shown on the page).

    ``facts[i][j]`` describes ``maps[i][j]``; each fact's ``scale`` is filled from the grid's
    scale where the caller left it empty.
    """
    grid = resolve_grid_scales(maps, scales)
    p = np.asarray(probs, dtype=float)
    top = np.argsort(p)[::-1][:TOP_K]
    figures = [
        ("Top classes", topk_bar([labels[i] for i in top], p[top], highlight=0, title=None)),
        ("Maps", map_grid(rgb, maps, row_titles, col_titles, scales=grid, opacity=opacity)),
    ]
    flat = []
    for fact_row, scale_row in zip(facts, grid):
        for fact, scale in zip(fact_row, scale_row):
            if fact.scale is None and fact.error is None:
                fact.scale = scale_text(scale)
            flat.append(fact)
    return Section(title, dict(inputs or {}), [(labels[i], float(p[i])) for i in top], figures, flat, list(captions))
