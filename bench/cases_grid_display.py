"""The Images grid's colour / scale change in Chromium: maps drawn in full vs layer maps at half resolution.

A 3 targets x 8 methods grid (the records of the issue-18 grid: four CAM-family maps upsampled from a
7 x 7 layer, a signed CAM, saliency, SmoothGrad, IG) is built twice with ``figures.image.map_grid``:
every map at 224 x 224, and with :func:`figures.grid.display_map` (the layer maps at 112 x 112, as
the Images page draws them). Each variant is one ``Plotly.relayout`` with the next scale preset's
arguments (the grid's own dropdown buttons, cycling through them), timed until the frame after it,
in two tabs of one Chromium; the harness alternates the variants. Synthetic maps: the time depends
on the cells drawn, not on their values.

Where the time of that change goes: the same relayout on the half-resolution figure as drawn, without
each of its parts (heatmaps, colour bars, photos), with every map cut to 28 x 28 cells (the redraw's floor)
and with the scales on the traces instead of colour axes (a restyle), alternated in tabs of one Chromium.

The Text page's display change (a 6 methods x 70 tokens heatmap, own scales): ``Plotly.react`` between the
tokens and the words view with the bars coloured in Python (:func:`figures.text.token_heatmap_rows`) and
the same figure with the bars coloured by Plotly's colour axis (numeric colours, as before: plotly.js 4
warns with a stack trace for every such bar); and, in Python, building + serialising that figure with
:func:`figures.style.unvalidated_figure` against the same dicts through a validated ``go.Figure``.
"""

from __future__ import annotations

import copy
import itertools
import json
import shutil

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import torch
import torch.nn.functional as F

import explainers
from bench.harness import Case
from bench.standalone import run_module
from figures.export import to_html
from figures.grid import display_map
from figures.image import map_grid
from figures.scales import MapKind
from figures.text import TokenRow, token_heatmap_rows

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


def tiny_maps(f: dict, side: int = 28) -> dict:
    """``f`` with every heatmap replaced by a ``side`` x ``side`` one over the same box: Plotly's redraw of
    the grid with (almost) no cells to recolour."""
    out = copy.deepcopy(f)
    for t in out["data"]:
        if t["type"] == "heatmap":
            step = 224 / side
            t.update(z=np.random.default_rng(0).random((side, side)).tolist(), dx=step, dy=step, x0=-0.5 + step / 2,
                     y0=-0.5 + step / 2)
    return out


def trace_scales(f: dict) -> tuple[dict, list[int], list[str]]:
    """``f`` with each heatmap's range and colours on the trace (no colour axes), its heatmap indices and the
    colour axes they had, for a ``Plotly.restyle`` of ``zmin``/``zmax`` instead of a relayout."""
    out = copy.deepcopy(f)
    index, axes = [], []
    for i, t in enumerate(out["data"]):
        if t["type"] == "heatmap":
            name = t.pop("coloraxis")
            axis = out["layout"].pop(name)
            t.update(zmin=axis["cmin"], zmax=axis["cmax"], colorscale=axis["colorscale"], colorbar=axis["colorbar"])
            index.append(i)
            axes.append(name)
    return out, index, axes


RESTYLE = """async ([args, index]) => {
  const gd = document.querySelector('.js-plotly-plot');
  await Plotly.restyle(gd, args, index);
  await new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)));
}"""
PARTS = {"as drawn": lambda f: f,
         "every map 28 x 28 (the redraw with almost no cells)": tiny_maps,
         "without the heatmaps": lambda f: {**f, "data": [t for t in f["data"] if t["type"] != "heatmap"]},
         "without the colour bars": lambda f: {**f, "layout": {k: {**v, "showscale": False} if k.startswith("coloraxis")
                                                                 else v for k, v in f["layout"].items()}},
         "without the photos": lambda f: {**f, "data": [t for t in f["data"] if t["type"] != "image"]}}
REACT = """async (f) => {
  const gd = document.getElementById('g');
  await Plotly.react(gd, f.data, f.layout);
  await new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)));
}"""


def plain(fig: go.Figure) -> dict:
    return json.loads(pio.to_json(fig, validate=False))


def token_rows(words: bool, seed: int = 0) -> list[TokenRow]:
    """6 methods over a 70-token text (two special tokens), or over its 35 words."""
    rng = np.random.default_rng(seed)
    if words:
        return [TokenRow(f"method {k}", [f"word{i}" for i in range(35)], rng.standard_normal(35)) for k in range(6)]
    tokens = ["<s>", *(f"▁to{i}" if i % 3 else f"ken{i}" for i in range(68)), "</s>"]
    return [TokenRow(f"method {k}", tokens, rng.standard_normal(70) if k % 2 else rng.random(70),
                     words=[f"word{i // 2}" for i in range(70)], special=[i in (0, 69) for i in range(70)])
            for k in range(6)]


def numeric_bars(fig: dict) -> dict:
    """``fig`` with every token bar coloured by its row's colour axis (numeric colours) and no carrier traces."""
    out = copy.deepcopy(fig)
    carriers = [t for t in out["data"] if t["type"] == "scatter"]
    axis = {t["yaxis"]: t["marker"]["coloraxis"] for t in carriers}
    shared = len(carriers) == 1
    out["data"] = [t for t in out["data"] if t["type"] == "bar"]
    for t in out["data"]:
        if "line" in t["marker"]:  # an ordinary token's bar (special tokens stay grey)
            t["marker"] = dict(color=[c[2] for c in t["customdata"]], line=t["marker"]["line"],
                               coloraxis="coloraxis" if shared else axis[t["yaxis"]])
    return out


def figure_cases(browser, quick: bool) -> list[Case]:
    """The grid's change without each part, and the text heatmap's tokens <-> words redraw, in Chromium."""
    import plotly.offline

    script = plotly.offline.get_plotlyjs()
    half = plain(grids()[HALF])
    presets = itertools.cycle(b["args"][0] for b in half["layout"]["updatemenus"][-1]["buttons"])
    parts = {}
    for name, cut in PARTS.items():
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_content("<div id=g></div>")
        page.add_script_tag(content=script)
        page.evaluate("(f) => Plotly.newPlot('g', f.data, f.layout)", cut(half))

        def change(page=page) -> None:
            page.bring_to_front()
            page.evaluate(CHANGE, next(presets))

        parts[name] = change
    moved, index, axes = trace_scales(half)
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.set_content("<div id=g></div>")
    page.add_script_tag(content=script)
    page.evaluate("(f) => Plotly.newPlot('g', f.data, f.layout)", moved)
    ranges = itertools.cycle([{"zmin": [b[f"{a}.cmin"] for a in axes], "zmax": [b[f"{a}.cmax"] for a in axes]}
                              for b in (b["args"][0] for b in half["layout"]["updatemenus"][-1]["buttons"])])

    def restyle(page=page) -> None:
        page.bring_to_front()
        page.evaluate(RESTYLE, [next(ranges), index])

    parts["scales on the traces, Plotly.restyle (no colour axes: skips Plotly's calc step)"] = restyle
    signed = [k % 2 == 1 for k in range(6)]
    views = {w: plain(token_heatmap_rows(token_rows(w), shared=False, signed=signed, width=90)) for w in (False, True)}
    texts = {}
    for name, convert in (("bars coloured in Python, one hidden carrier per colour axis (now)", lambda f: f),
                          ("bars coloured by the colour axis (numeric, before)", numeric_bars)):
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_content("<div id=g style='width:1500px'></div>")
        page.add_script_tag(content=script)
        figs = [convert(views[False]), convert(views[True])]
        page.evaluate("(f) => Plotly.newPlot('g', f.data, f.layout)", figs[0])
        flip = itertools.cycle([figs[1], figs[0]])

        def redraw(page=page, flip=flip) -> None:
            page.bring_to_front()
            page.evaluate(REACT, next(flip))

        texts[name] = redraw
    now = next(iter(texts))
    return [
        Case("Images grid, 3 x 8, layer maps at half resolution: one scale-preset change without each part (Chromium)",
             parts, reference="as drawn", reps=7 if quick else 15, warmup=2,
             note="plotly.js from plotly.py in a standalone page; what is left without the heatmaps is the rest "
                  "of the redraw (axes, colour bars, titles, photos, menus); with 28 x 28 maps, that and 24 heatmap "
                  "traces with next to no cells: the floor of any colour change Plotly draws on this grid."),
        Case("Text page, 6 methods x 70 tokens, own scales: Plotly.react tokens <-> words (Chromium)", texts,
             reference="bars coloured by the colour axis (numeric, before)", reps=7 if quick else 15, warmup=2,
             goals={now: "< 1x (no per-bar warning)"}),
    ]


def build_cases(quick: bool) -> Case:
    """Building + serialising the 6 x 70-token figure: unvalidated (now) against validated (before)."""
    rows = token_rows(False)
    signed = [k % 2 == 1 for k in range(6)]
    spec = token_heatmap_rows(rows, shared=False, signed=signed, width=90).to_dict()
    return Case("Text page, 6 methods x 70 tokens: build the heatmap figure and serialise it (Python)", {
        "figures.text.token_heatmap_rows (unvalidated, now)":
            lambda: pio.to_json(token_heatmap_rows(rows, shared=False, signed=signed, width=90), validate=False),
        "the same dicts through a validated go.Figure (before)":
            lambda: pio.to_json(go.Figure(spec["data"], spec["layout"]), validate=False),
    }, reference="the same dicts through a validated go.Figure (before)", reps=9 if quick else 21, warmup=2,
        note="the 'before' variant validates the finished dicts (the old builder also ran its Python loops: "
             "57 ms against 15 ms in one run at load 4.5).")


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
                      "by a minor version); the browser test measures the page itself."),
            *figure_cases(browser, quick), build_cases(quick)]


def main() -> None:
    """``python -m bench.cases_grid_display [--quick]``: written to results/grid-display.md (+ .html)."""
    run_module("bench.cases_grid_display", "Map grid display changes", cases, "grid-display.md")


if __name__ == "__main__":
    main()
