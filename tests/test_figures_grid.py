"""figures.grid.display_map: which maps the grid draws at half resolution, and what that costs in honesty.

The reference for a CAM-family map is torch's bilinear upsample of a layer grid (the explainers'
own contract, ``explainers.cam.upsample``), computed here independently with ``F.interpolate``.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from figures.grid import SMOOTH_FACTOR, display_map
from figures.image import map_grid
from figures.scales import CLIP, MapKind, value_range


def upsampled(raw: np.ndarray, size: int = 224) -> np.ndarray:
    return F.interpolate(torch.from_numpy(raw)[None, None], size=(size, size), mode="bilinear",
                         align_corners=False)[0, 0].numpy()


RAW = np.random.default_rng(0).random((7, 7)).astype(np.float32)


def test_a_layer_map_is_drawn_from_every_second_pixel_of_its_own_values():
    heat = upsampled(RAW)
    shown = display_map(heat, RAW)
    assert shown.shape == (112, 112)
    np.testing.assert_array_equal(shown, heat[::2, ::2])  # the map's own values, none resampled


@pytest.mark.parametrize("raw_side, size", [(56, 224), (28, 220), (7, 223)])
def test_fine_layers_and_odd_sizes_are_drawn_in_full(raw_side, size):
    raw = np.random.default_rng(1).random((raw_side, raw_side)).astype(np.float32)
    heat = upsampled(raw, size)
    assert display_map(heat, raw) is heat  # 56 -> 224 is 4x (< SMOOTH_FACTOR); odd sides never halved
    assert SMOOTH_FACTOR == 8


def test_pixel_level_maps_and_missing_maps_are_untouched():
    heat = np.random.default_rng(2).standard_normal((224, 224)).astype(np.float32)
    assert display_map(heat, None) is heat
    assert display_map(None, RAW) is None


def test_half_resolution_keeps_neighbours_and_colour_ranges_within_the_stated_bounds():
    """Kept neighbours differ by at most 2/32 of the largest layer-cell step (7 -> 224); the clipped and
    full ranges of the drawn map stay within 2% of the full map's (the PNG and report use the full map)."""
    for seed in range(5):
        raw = np.random.default_rng(seed).random((7, 7)).astype(np.float32)
        heat = upsampled(raw)
        shown = display_map(heat, raw)
        step = max(np.abs(np.diff(raw, axis=0)).max(), np.abs(np.diff(raw, axis=1)).max())
        jumps = max(np.abs(np.diff(shown, axis=0)).max(), np.abs(np.diff(shown, axis=1)).max())
        assert jumps <= 2 / 32 * step + 1e-6
        for clip in (CLIP, None):
            lo, hi = value_range(heat, False, clip)
            lo2, hi2 = value_range(shown, False, clip)
            assert abs(hi2 - hi) <= 0.02 * (hi - lo) and abs(lo2 - lo) <= 0.02 * (hi - lo)
        # the control: every 4th pixel breaks the neighbour bound, so the bound is not loose
        coarse = heat[::4, ::4]
        assert max(np.abs(np.diff(coarse, axis=0)).max(), np.abs(np.diff(coarse, axis=1)).max()) > 2 / 32 * step


def test_the_grid_payload_shrinks_by_the_cells_not_drawn():
    """3 targets x (2 layer maps + 1 pixel map): the layer maps' heatmaps carry a quarter of the cells."""
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)
    rows = [[upsampled(rng.random((7, 7)).astype(np.float32)) for _ in range(2)]
            + [rng.standard_normal((224, 224)).astype(np.float32)] for _ in range(3)]
    raws = [[RAW, RAW, None] for _ in range(3)]
    kinds = [MapKind(family="cam"), MapKind(family="cam"), MapKind(signed=True, family="gradient")]
    full = map_grid(photo, rows, ["a", "b", "c"], ["m1", "m2", "m3"], kinds=kinds)
    half = map_grid(photo, [[display_map(h, r) for h, r in zip(row, rr)] for row, rr in zip(rows, raws)],
                    ["a", "b", "c"], ["m1", "m2", "m3"], kinds=kinds)
    cells = [np.asarray(t.z).size for t in half.data if t.type == "heatmap"]
    assert sorted(cells) == [112 * 112] * 6 + [224 * 224] * 3
    assert len(half.to_json()) < 0.6 * len(full.to_json())
    # the signed pixel map keeps its diverging scale centred on 0
    axes = [a for k, a in half.layout.to_plotly_json().items() if k.startswith("coloraxis")]
    assert sum(a["cmin"] == -a["cmax"] for a in axes) == 3
