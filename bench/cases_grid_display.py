"""The Images grid's colour / scale change in Chromium: maps drawn in full vs layer maps at half resolution.

A 3 targets x 8 methods grid (the records of the issue-18 grid: four CAM-family maps upsampled from a
7 x 7 layer, a signed CAM, saliency, SmoothGrad, IG) is built twice with ``figures.image.map_grid``:
every map at 224 x 224, and with :func:`figures.grid.display_map` (the layer maps at 112 x 112, as
the Images page draws them). Each variant is one ``Plotly.relayout`` with the next scale preset's
arguments (the grid's own dropdown buttons, cycling through them), timed until the frame after it,
in two tabs of one Chromium; the harness alternates the variants. Synthetic maps: the time depends
on the cells drawn, not on their values.
"""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import torch
import torch.nn.functional as F

import explainers
from bench.harness import Case
from bench.standalone import run_module
from figures.export import to_html
from figures.grid import display_map
from figures.image import map_grid
from figures.scales import MapKind

METHODS = ("cam", "grad_cam", "grad_cam_plus_plus", "saliency", "grad_cam_negative", "smooth_grad_cam_plus_plus",
           "smoothgrad", "integrated_gradients")
FULL = "every map 224 x 224"
HALF = "layer maps 112 x 112 (display_map)"
CHANGE = """async (args) => {
  const gd = document.querySelector('.js-plotly-plot');
  await Plotly.relayout(gd, args);
  await new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)));
}"""


def grids(seed: int = 0) -> dict[str, object]:
    """The two figures of the same 3 x 8 grid."""
    rng = np.random.default_rng(seed)
    photo = rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)
    records = [explainers.method(m) for m in METHODS]
    kinds = [MapKind(signed=r.signed, family=r.family, against=r.evidence_against) for r in records]
    cells = []
    for _ in range(3):
        row = []
        for r in records:
            if r.needs_layer:
                raw = rng.standard_normal((7, 7)).astype(np.float32) if r.signed else rng.random((7, 7)).astype(np.float32)
                heat = F.interpolate(torch.from_numpy(raw)[None, None], size=(224, 224), mode="bilinear",
                                     align_corners=False)[0, 0].numpy()
                row.append((heat, raw))
            else:
                heat = rng.standard_normal((224, 224)).astype(np.float32)
                row.append((heat if r.signed else np.abs(heat), None))
        cells.append(row)
    args = dict(row_titles=["a", "b", "c"], col_titles=[r.label for r in records], kinds=kinds, columns=4)
    return {FULL: map_grid(photo, [[h for h, _ in row] for row in cells], **args),
            HALF: map_grid(photo, [[display_map(h, r) for h, r in row] for row in cells], **args)}


def cases(quick: bool) -> list[Case]:
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_FLAGS

    browser = sync_playwright().start().chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
    variants = {}
    for name, fig in grids().items():
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_content(to_html(fig))
        page.wait_for_selector(".js-plotly-plot .heatmaplayer")
        presets = itertools.cycle(b["args"][0] for b in fig.layout.updatemenus[-1].to_plotly_json()["buttons"])

        def change(page=page, presets=presets) -> None:
            page.bring_to_front()
            page.evaluate(CHANGE, next(presets))

        variants[name] = change
    return [Case("Images grid, 3 targets x 8 methods: one scale-preset change in Chromium (relayout -> next frame)",
                 variants, reference=FULL, reps=7 if quick else 15, warmup=2,
                 goals={HALF: "<= 0.7x (a quarter of the layer maps' cells)"},
                 note="plotly.js from plotly.py in a standalone page (the dashboard's Streamlit bundle differs "
                      "by a minor version); the browser test measures the page itself.")]


def main() -> None:
    """``python -m bench.cases_grid_display [--quick]``: written to results/grid-display.md (+ .html)."""
    run_module("bench.cases_grid_display", "Map grid display changes", cases, "grid-display.md")


if __name__ == "__main__":
    main()
