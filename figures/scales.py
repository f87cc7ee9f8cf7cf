"""One home for colour-scale decisions: which range and colours each attribution map gets.

Rules (documented here, relied on by every builder):

- A *signed* map (values argue for and against the class, e.g. Integrated Gradients) gets a
  diverging scale centred on zero: ``zmin = -m, zmax = +m`` with ``m = max |x|``, so white
  means "no effect", red "for", blue "against".
- A non-negative map gets a sequential scale anchored at zero: ``zmin = min(0, min x)``,
  ``zmax = max x``, so the darkest colour always means "no evidence".
- ``clip_percentile=p`` (e.g. 99.5) replaces the maxima above by the p-th percentile (of
  ``|x|`` when signed, of ``x`` otherwise), so a few extreme pixels do not wash the map out;
  values beyond it saturate.
- NaNs are ignored; a map that is all-NaN, all-zero or constant still gets a valid,
  non-empty range (``zmax > zmin``): ``[0, 1]``, ``[-1, 1]`` or ``[v, v + 1]``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import plotly.colors as pcolors

from explainers.errors import ExplainerError

ScaleMode = Literal["per_map", "shared", "signed"]
SCALE_MODES: tuple[str, ...] = ("per_map", "shared", "signed")
SEQUENTIAL = "Inferno"
DIVERGING = "RdBu_r"


@dataclass(frozen=True)
class Scale:
    """A colour range and colour map for one or more maps; ``label`` explains it (lines split by ``\\n``)."""

    zmin: float
    zmax: float
    colorscale: str
    signed: bool
    label: str

    @property
    def html_label(self) -> str:
        """``label`` with Plotly line breaks, for colorbar titles."""
        return self.label.replace("\n", "<br>")


def colour_stops(scale: Scale, fade_centre: bool = False) -> list[tuple[float, tuple[float, float, float, float]]]:
    """``scale``'s colour stops as ``(position, (r, g, b, alpha))`` with channels in [0, 1].

    ``fade_centre`` (for signed maps drawn over a photo) makes colours transparent near 0:
    ``alpha = min(1, 2 |2p - 1|)`` at position ``p``, so the photo shows through where a
    pixel neither helps nor hurts, and anything beyond a quarter of the range is opaque.
    """
    stops = pcolors.get_colorscale(scale.colorscale)
    if fade_centre and scale.signed:
        fine = np.linspace(0.0, 1.0, 21)
        stops = list(zip(fine, pcolors.sample_colorscale(stops, list(fine))))
    rgb = pcolors.convert_colors_to_same_type([c for _, c in stops], colortype="tuple")[0]
    out = []
    for (p, _), c in zip(stops, rgb):
        alpha = min(1.0, 2 * abs(2 * float(p) - 1)) if fade_centre and scale.signed else 1.0
        out.append((float(p), tuple(v / 255.0 if max(c) > 1 else float(v) for v in c) + (alpha,)))
    return out


def is_signed(values: np.ndarray) -> bool:
    """True when any finite value is negative."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return bool(finite.size and finite.min() < 0)


def value_range(values: np.ndarray, signed: bool, clip_percentile: float | None = None) -> tuple[float, float]:
    """``(zmin, zmax)`` for ``values`` under the module's rules; always ``zmax > zmin``."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (-1.0, 1.0) if signed else (0.0, 1.0)
    if signed:
        a = np.abs(v)
        m = float(np.percentile(a, clip_percentile)) if clip_percentile is not None else float(a.max())
        m = m if m > 0 else 1.0
        return -m, m
    if clip_percentile is not None:
        lo, hi = float(np.percentile(v, 100.0 - clip_percentile)), float(np.percentile(v, clip_percentile))
    else:
        lo, hi = float(v.min()), float(v.max())
    lo = min(lo, 0.0)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _label(quantity: str, shared: bool, signed: bool, clip_percentile: float | None) -> str:
    lines = [quantity, "shared scale" if shared else "own scale"]
    if signed:
        lines.append("red + / blue −")
    if clip_percentile is not None:
        lines.append(f"clipped at p{clip_percentile:g}")
    return "\n".join(lines)


def scale_for(
    maps: Sequence[np.ndarray | None],
    mode: ScaleMode = "per_map",
    signed: bool | Sequence[bool] | None = None,
    clip_percentile: float | None = None,
    quantity: str = "attribution",
    sequential: str = SEQUENTIAL,
    diverging: str = DIVERGING,
    groups: Sequence[Hashable] | None = None,
) -> list[Scale | None]:
    """One :class:`Scale` per map (``None`` where the map is ``None``).

    ``mode``: ``"per_map"`` gives each map its own range; ``"shared"`` gives every map the
    same :class:`Scale` object (signed if any map is), or with ``groups`` (one key per map, e.g.
    the method's family: maps in the same units) one object per group; ``"signed"`` forces a
    diverging scale centred on zero on each map, with its own range. ``signed``: ``None`` detects
    it from the data (any negative value), a bool applies to all maps, a sequence is per map.
    """
    if mode not in SCALE_MODES:
        raise ExplainerError(f"Unknown colour-scale mode {mode!r}; choose one of {', '.join(SCALE_MODES)}.")
    if clip_percentile is not None and not 50.0 < clip_percentile <= 100.0:
        raise ExplainerError(f"clip_percentile must be in (50, 100], got {clip_percentile}.")
    maps = list(maps)
    if mode == "signed":
        flags = [True] * len(maps)
    elif signed is None:
        flags = [m is not None and is_signed(m) for m in maps]
    elif isinstance(signed, bool):
        flags = [signed] * len(maps)
    else:
        flags = list(signed)
        if len(flags) != len(maps):
            raise ExplainerError(f"Got {len(flags)} signed flags for {len(maps)} maps.")

    def make(values: np.ndarray, is_sig: bool, shared: bool) -> Scale:
        zmin, zmax = value_range(values, is_sig, clip_percentile)
        return Scale(zmin, zmax, diverging if is_sig else sequential, is_sig, _label(quantity, shared, is_sig, clip_percentile))

    if mode == "shared":
        keys = [0] * len(maps) if groups is None else list(groups)
        if len(keys) != len(maps):
            raise ExplainerError(f"Got {len(keys)} groups for {len(maps)} maps.")
        members: dict[Hashable, list[int]] = {}
        for i, (key, m) in enumerate(zip(keys, maps)):
            if m is not None:
                members.setdefault(key, []).append(i)
        made = {key: make(np.concatenate([np.asarray(maps[i], dtype=float).ravel() for i in idx]),
                          any(flags[i] for i in idx), shared=len(idx) > 1)
                for key, idx in members.items()}
        return [None if m is None else made[key] for key, m in zip(keys, maps)]
    return [None if m is None else make(m, f, shared=False) for m, f in zip(maps, flags)]


def scale_grid(
    maps: Sequence[Sequence[np.ndarray | None]],
    mode: ScaleMode = "per_map",
    signed: bool | None = None,
    clip_percentile: float | None = None,
    quantity: str = "attribution",
) -> list[list[Scale | None]]:
    """:func:`scale_for` over a rows x columns grid of maps; returns the same nesting."""
    flat = [m for row in maps for m in row]
    scales = scale_for(flat, mode, signed, clip_percentile, quantity)
    out, i = [], 0
    for row in maps:
        out.append(scales[i : i + len(row)])
        i += len(row)
    return out


def resolve_grid_scales(
    maps: Sequence[Sequence[np.ndarray | None]],
    scales: Scale | Sequence[Sequence[Scale | None]] | None,
) -> list[list[Scale | None]]:
    """The scale of every cell of a map grid: ``None`` -> each map its own, one :class:`Scale` -> shared by all.

    Checks that ``maps`` is a non-empty rectangle and that a nested ``scales`` has its shape.
    """
    if not maps or not maps[0] or any(len(r) != len(maps[0]) for r in maps):
        raise ExplainerError("The map grid must be a non-empty rectangle (the same number of maps in every row).")
    if scales is None:
        return scale_grid(maps)
    if isinstance(scales, Scale):
        return [[None if m is None else scales for m in r] for r in maps]
    grid = [list(r) for r in scales]
    if [len(r) for r in grid] != [len(r) for r in maps]:
        raise ExplainerError("Give one scale per map of the grid (same rows and columns).")
    return grid


def distinct(scales: Sequence[Sequence[Scale | None]]) -> list[Scale]:
    """The distinct :class:`Scale` objects of a grid, in first-seen order (by identity)."""
    return list({id(s): s for r in scales for s in r if s is not None}.values())


@dataclass(frozen=True)
class MapKind:
    """What one column's maps are, as its method's registry record says (the caller reads the record).

    ``signed``: the method's maps take both signs (a diverging scale centred on 0, whatever one
    map's values); ``family``: maps of one family and sign may share a scale ("same units");
    ``against``: the map shows evidence *against* the target (a counterfactual map).
    """

    signed: bool = False
    family: str = ""
    against: bool = False


GRID_MODES: dict[str, str] = {
    "own": "own per map",
    "method": "shared per method",
    "family": "shared per family",
}
"""Scale modes of a map grid: which maps share one range. Maps of different sign never share one."""
CLIP = 99.5
"""The grid's clipping percentile (the "clipped" presets)."""


def grid_presets(
    maps: Sequence[Sequence[np.ndarray | None]],
    kinds: Sequence[MapKind] | None = None,
    colorscale: str = SEQUENTIAL,
) -> dict[tuple[str, bool], list[list[Scale | None]]]:
    """Every (mode, clipped) scale preset of a rows x columns map grid, by :data:`GRID_MODES` and clipping.

    A map is signed when its column's kind says so or when it has a negative value (it is then
    never drawn on a sequential scale). ``"own"`` gives each map its range; ``"method"`` one range
    per column; ``"family"`` one range per (family, sign) over all columns of that family. The range
    of a group is :func:`value_range` of all its maps' values together, clipped at :data:`CLIP` or not.
    """
    cols = len(maps[0])
    kinds = list(kinds) if kinds is not None else [MapKind(family=f"column {j}") for j in range(cols)]
    if len(kinds) != cols:
        raise ExplainerError(f"Got {len(kinds)} map kinds for {cols} columns.")
    sign = [[m is not None and (kinds[j].signed or is_signed(m)) for j, m in enumerate(row)] for row in maps]
    groups = {
        "own": lambda i, j: (i, j),
        "method": lambda i, j: (j, sign[i][j]),
        "family": lambda i, j: (kinds[j].family, sign[i][j]),
    }
    out = {}
    for mode, group in groups.items():
        for clipped in (True, False):
            members: dict[tuple, list[np.ndarray]] = {}
            for i, row in enumerate(maps):
                for j, m in enumerate(row):
                    if m is not None:
                        members.setdefault(group(i, j), []).append(np.asarray(m, dtype=float).ravel())
            made: dict[tuple, Scale] = {}
            grid: list[list[Scale | None]] = []
            for i, row in enumerate(maps):
                grid.append([])
                for j, m in enumerate(row):
                    if m is None:
                        grid[i].append(None)
                        continue
                    key = group(i, j)
                    if key not in made:
                        clip = CLIP if clipped else None
                        lo, hi = value_range(np.concatenate(members[key]), sign[i][j], clip)
                        made[key] = Scale(lo, hi, DIVERGING if sign[i][j] else colorscale, sign[i][j],
                                          _label("attribution", mode != "own", sign[i][j], clip))
                    grid[i].append(made[key])
            out[mode, clipped] = grid
    return out
