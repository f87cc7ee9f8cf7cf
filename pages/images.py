"""Images page: pick a photo, a model, target classes and a layer; compare methods side by side."""

from __future__ import annotations

import re
import time

import numpy as np
import streamlit as st

import explainers
from explainers.precision import native_bfloat16
from figures.export import grid_png, maps_npz, to_html
from figures.grid import display_map
from figures.image import map_grid, overlay_figure, photo_figure, topk_bar
from figures.scales import SEQUENTIAL, Scale, grid_presets
from figures.style import PLOT_CONFIG
from ui import widgets
from ui.evaluation_results import score_caption
from ui.guard import panel
from ui.image_inputs import choose_input
from ui.image_results import (
    LAST_IMAGES,
    MapResult,
    cached_maps,
    compute_maps,
    explainer_runs,
    forward_seconds,
    map_kinds,
    missing_maps,
    score_results,
    seconds_left,
)
from ui.methods import (
    PAGE_DEFAULTS,
    caption,
    default_methods,
    fast_mode_note,
    image_methods,
    label,
    not_offered,
    page_options,
)
from ui.report_button import export_report_button, image_report_section

INITIAL = {"opacity": 0.55, "colorscale": SEQUENTIAL, "mode": ("own", True)}
"""The grid's starting display (changed in the browser by the controls above the grid)."""
REDRAW_S = 1.5
"""While slow maps run, the grid is redrawn with the finished ones at most this often."""
BASELINES = {"zero": "Zero tensor (mean image)", "black": "Black image", "blur": "Blurred photo", "uniform": "Uniform noise"}
MAX_TARGETS = 4
PASS_THROUGH = ("ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d", "Identity", "Dropout", "Dropout2d")
"""Module types whose output is their input (or a padded copy): not worth a place in the layer list."""
MASKS = (50, 100, 250, 500, 1000, 2000, 4000)
WINDOWS = (8, 16, 32, 56)


def choose_targets(labels: list[str], probs: np.ndarray, context: tuple) -> list[int]:
    """Target classes, one grid row each: the predicted class by default; top-k first, all searchable.

    A new image or model starts again from its own predicted class.
    """
    order = [int(i) for i in np.argsort(probs)[::-1]]
    if st.session_state.get("img_targets_for") != context:
        st.session_state["img_targets_for"] = context
        widgets.write("img_targets", order[:1])
    chosen = st.multiselect(
        "Target classes (one row each; type to search all classes)",
        order,
        format_func=lambda i: f"{labels[i]} ({probs[i]:.1%})",
        max_selections=MAX_TARGETS,
        key="img_targets",
        **widgets.kept("img_targets", order[:1], order, many=True),
    )
    return chosen or order[:1]


def is_block(name: str) -> bool:
    """A top-level module or a numbered item of a container (``layer4``, ``_blocks.3``, ``layer4.1``,
    ``encoder.layers.encoder_layer_11``), not a module inside one (``_blocks.3._bn1``)."""
    parts = name.split(".")
    return len(parts) == 1 or re.fullmatch(r"(.*_)?\d+", parts[-1]) is not None


def choose_layer(model) -> str:
    """Target layer for the CAM family: outputs covering the image (feature maps, patch tokens) with
    their grids (explainers.layers.LayerInfo.describe), the automatic one marked. By default only the
    blocks' outputs are listed; padding, identity and dropout modules (their output is their input) never."""
    infos = {info.name: info for info in model.layers() if info.grid is not None and info.kind not in PASS_THROUGH}
    if not infos:
        st.warning("This model has no layer with a feature-map or patch-token output: CAM-family methods cannot run.")
        return model.default_layer
    auto = model.default_layer
    every = st.checkbox("List every module inside the blocks", key="img_layer_every",
                        help="By default only the blocks' outputs (and the automatic layer) are listed.")
    names = [name for name in infos if every or is_block(name) or name == auto]
    if st.session_state.get("img_layer") not in names:
        # set, not popped: a value written through Session State is sent to the browser, which otherwise
        # keeps showing the previous model's layer label under the same widget key
        widgets.write("img_layer", auto if auto in names else names[-1])

    def describe(name: str) -> str:
        shown = infos[name].describe() if is_block(name) else "    › " + infos[name].describe()
        return f"{shown}{'  - automatic' if name == auto else ''}"

    layer = st.selectbox(f"Target layer (CAM family; {len(names)} of {len(model.layers())} modules listed)", names,
                         format_func=describe, key="img_layer", **widgets.kept("img_layer", auto, names))
    cells = infos[layer].grid.height * infos[layer].grid.width
    if cells == 1:
        st.warning("This layer's output is 1x1: its map cannot show where anything is.")
    elif auto in infos and cells > infos[auto].grid.height * infos[auto].grid.width:
        st.caption("An earlier layer than the automatic one: finer maps, but less specific to the class.")
    return layer


def method_options(model) -> dict[str, dict]:
    """Per-method options (sidebar expander), keyed by variant."""
    with st.sidebar.expander("Method options"):
        baseline = st.selectbox("Integrated Gradients: baseline", list(BASELINES), format_func=BASELINES.get, key="img_ig_baseline")
        adaptive = st.checkbox("Integrated Gradients: adaptive path (refined until delta <= 1%, at most 400 passes)",
                               value=True, key="img_ig_adaptive",
                               help="Points are added where the path's gradient changes most; typically 10-100 "
                                    "passes. Untick for a fixed number of Gauss-Legendre steps (as captum).")
        steps = st.slider("Integrated Gradients: fixed steps", 8, 256, PAGE_DEFAULTS["steps"], key="img_ig_steps",
                          disabled=adaptive)
        fast = st.checkbox("Fast mode: saliency, SmoothGrad and IG in bfloat16 (approximate)", key="img_fast",
                           disabled=not native_bfloat16(), help=fast_mode_note())
        samples = st.slider("Noisy methods (SmoothGrad, VarGrad, Smooth Grad-CAM++): samples", 4, 100,
                            PAGE_DEFAULTS["samples"], key="img_sg_samples")
        noise = st.slider("Noisy methods: noise level", 0.0, 0.5, PAGE_DEFAULTS["noise_level"], 0.01, key="img_sg_noise")
        seed = int(st.number_input("Noise seed", 0, 2**31 - 1, PAGE_DEFAULTS["seed"], key="img_seed"))
    widgets = {"steps": steps, "baseline": baseline, **perturbation_options(), "tolerance": PAGE_DEFAULTS["tolerance"] if adaptive else 0.0,
               "max_steps": max(PAGE_DEFAULTS["max_steps"], steps), "samples": samples, "noise_level": noise, "seed": seed}
    if baseline == "black":
        widgets["black"] = tuple(model.to_tensor(np.zeros((1, 1, 3), np.uint8))[0, :, 0, 0].tolist())
    if fast:
        widgets["precision"] = "bfloat16"
    return page_options(widgets)


def takers(option: str, without: str | None = None) -> list[str]:
    """Labels of the image methods whose option table has ``option`` (and not ``without``)."""
    return [m.label for m in explainers.methods("image") if option in m.options and (without is None or without not in m.options)]


def perturbation_options() -> dict:
    """Masks / neighbours of the perturbation methods and the occlusion window, for the methods that take them."""
    out = {}
    masked = takers("samples", without="noise_level")
    if masked:
        masks = st.select_slider(f"{', '.join(masked)}: masks / samples", ["default", *MASKS], "default", key="img_masks",
                                 help="Fewer is faster and noisier; 'default' keeps each method's own count.")
        if masks != "default":
            out["masks"] = masks
    windowed = takers("window")
    if windowed:
        window = st.select_slider(f"{', '.join(windowed)}: window (pixels; stride half of it)", WINDOWS, 16,
                                  key="img_window")
        out |= {"window": window, "stride": max(1, window // 2)}
    return out


def display_options() -> dict:
    with st.sidebar.expander("Display", expanded=True):
        st.caption("Opacity, colours and scales sit above the grid and change it at once, with no rerun.")
        return {"columns": st.slider("Maps per line", 1, 8, 4, key="img_columns",
                                     help="Maps keep their size: more methods wrap onto more lines. Four fit a "
                                          "1600-pixel-wide window with the sidebar open.")}


def grid_arrays(results: dict, variants: list[str], targets: list[int]) -> list[list[np.ndarray | None]]:
    return [[results.get((v, t), MapResult(v, t, None)).heat for v in variants] for t in targets]


def initial_scales(maps: list[list[np.ndarray | None]], variants: list[str]) -> list[list[Scale | None]]:
    """The grid's starting scales (:data:`INITIAL`), which the PNG and the report use."""
    return grid_presets(maps, map_kinds(variants), INITIAL["colorscale"])[INITIAL["mode"]]


def facts(result: MapResult, labels: list[str]) -> str:
    """The line under a map: method, layer, target, time, and IG's convergence delta."""
    name = label(result.variant)
    if result.error:
        return f"**{name}** for *{labels[result.target]}*: :red[{result.error}]"
    parts = [f"**{name}**", f"target *{labels[result.target]}*"]
    if result.extras.get("all_zero"):
        parts.append(":orange-badge[zero everywhere] no pixel changes this method's score here (e.g. the image "
                     "equals the baseline, or its gradients vanish): the map is blank, not broken")
    if result.extras.get("precision") == "bfloat16":
        parts.append(":violet-badge[fast mode: bfloat16]")
    if result.layer:
        parts.append(f"layer `{result.layer}`")
    parts.append(f"{result.seconds * 1000:.0f} ms")
    steps = result.extras.get("steps")
    if steps is not None:
        parts.append(f"{int(steps[0] if isinstance(steps, (list, tuple)) else steps)} steps")
    ratio = result.delta_ratio
    if ratio is not None:
        badge = ":orange-badge[:material/warning: delta > 1%]" if ratio > 0.01 else ":green-badge[delta ok]"
        parts.append(f"delta {ratio:.2%} of the score difference {badge}")
    if result.faithfulness is not None:
        parts.append(score_caption(result.faithfulness))
    return " · ".join(parts)


def row_title(target: int, labels: list[str], probs: np.ndarray, predicted: int) -> str:
    return f"{labels[target]} ({'predicted, ' if target == predicted else ''}{probs[target]:.1%})"


def show_grid(slot, rgb, results, variants, targets, titles, columns: int, pending=frozenset(), key="img_grid"):
    """Draw the map grid into ``slot``: computed maps, "computing..." for ``pending``, failures named.

    Maps upsampled from a coarse layer grid are drawn at half resolution (:func:`figures.grid.display_map`),
    which halves what Plotly recolours on a colour or scale change. The figure is kept in the session
    per (results, layout), so a rerun that changes nothing in the grid (a button, a download) does not
    rebuild it.
    """
    cells = [[results.get((v, t)) for v in variants] for t in targets]
    signature = (tuple(id(c) for row in cells for c in row), tuple(variants), tuple(titles), columns, frozenset(pending),
                 rgb.shape, id(rgb) if rgb.base is None else id(rgb.base))
    kept = st.session_state.get("img_grid_figure")
    if kept is None or kept[0] != signature:
        notes = [["computing…" if (v, t) in pending else "failed: see the note below" if c is not None and c.error
                  else None for v, c in zip(variants, row)] for t, row in zip(targets, cells)]
        maps = [[None if c is None else display_map(c.heat, c.raw) for c in row] for row in cells]
        fig = map_grid(rgb, maps, titles, [label(v) for v in variants], kinds=map_kinds(variants), columns=columns,
                       opacity=INITIAL["opacity"], mode=INITIAL["mode"], colorscale=INITIAL["colorscale"], notes=notes)
        kept = (signature, fig)
        st.session_state["img_grid_figure"] = kept
    slot.plotly_chart(kept[1], key=key, width="content", config=PLOT_CONFIG)
    return kept[1]


def downloads(rgb, maps, variants, targets, labels, fig, results) -> None:
    """Download buttons; every file is built only when its button is clicked (deferred data)."""
    row_titles = [labels[t] for t in targets]
    col_titles = [label(v) for v in variants]
    named = {f"{v}__{labels[t]}": r.heat for (v, t), r in results.items() if r.heat is not None}
    meta = {"targets": row_titles, "methods": col_titles}
    left, middle, right = st.columns(3)
    left.download_button("Grid as PNG", lambda: grid_png(rgb, maps, row_titles, col_titles, initial_scales(maps, variants),
                                                         INITIAL["opacity"]),
                         "maps.png", "image/png", key="img_dl_png", on_click="ignore",
                         help="Drawn at the grid's starting display (opacity 0.55, each map's own scale, clipped); "
                              "the HTML keeps the controls.")
    middle.download_button("All maps as NPZ (raw values)", lambda: maps_npz(named, meta), "maps.npz",
                           "application/octet-stream", key="img_dl_npz", on_click="ignore")
    right.download_button("Grid as interactive HTML", lambda: to_html(fig), "maps.html", "text/html",
                          key="img_dl_html", on_click="ignore")
    with st.expander("Download one map"):
        if not named:
            return
        pick = st.selectbox("Map", list(named), key="img_dl_pick")
        variant, target_label = pick.split("__", 1)

        def single_html() -> str:
            title = f"{label(variant)}: {target_label}"
            return to_html(overlay_figure(rgb, named[pick], opacity=INITIAL["opacity"], title=title))

        a, b = st.columns(2)
        a.download_button("This map as NPZ", lambda: maps_npz({pick: named[pick]}, meta), f"{pick}.npz",
                          key="img_dl_one_npz", on_click="ignore")
        b.download_button("This map as HTML", single_html, f"{pick}.html", "text/html",
                          key="img_dl_one_html", on_click="ignore")


def compute_slow(shared, x, context, variants, targets, layer, options, results, todo, status, redraw) -> dict:
    """The slow maps, one at a time, under one progress bar at the top of the grid.

    The bar says how many of the grid's maps are done, which method runs and its passes, and
    the time left from :func:`ui.image_results.seconds_left` (the estimate before the first pass, then
    the pace of the pass under way);
    the grid is redrawn as maps finish (at most every :data:`REDRAW_S` seconds, and at the end).
    """
    total, labels = len(variants) * len(targets), shared.model.labels
    found: dict = {}
    by_label = {label(v): v for v in variants}
    last, since = [time.perf_counter()], [time.perf_counter()]  # the last redraw; when the pass under way began

    def left(running: tuple[tuple[str, ...], int, float, int, int] | None = None) -> str:
        remaining = seconds_left([t for t in todo if t not in found], x, options, forward_seconds(), running)
        if remaining is None:
            return ""
        remaining = remaining if running else max(remaining - (time.perf_counter() - since[0]), 0.0)
        return f" · about {remaining:.0f} s left" if remaining >= 1 else " · finishing"

    def text(extra: str = "", running=None) -> str:
        return f"{total - len(todo) + len(found)} of {total} maps{extra}{left(running)}"

    bar = status.progress((total - len(todo)) / total, text=text(f" · {len(todo)} slow maps to compute"))

    def progress(name: str, target: int, steps: int, of: int) -> None:
        fraction = (total - len(todo) + len(found) + steps / max(of, 1)) / total
        running = (tuple(by_label[n] for n in name.split(" + ") if n in by_label), target,
                   time.perf_counter() - since[0], steps, of)
        bar.progress(min(fraction, 1.0), text=text(f" · {name} for {labels[target]}: {steps}/{of} passes", running))

    def finished(result: MapResult) -> None:
        found[result.variant, result.target] = result
        since[0] = time.perf_counter()
        bar.progress((total - len(todo) + len(found)) / total, text=text())
        if time.perf_counter() - last[0] > REDRAW_S and len(found) < len(todo):
            redraw(results | found)
            last[0] = time.perf_counter()

    compute_maps(shared, x, context, variants, targets, layer, options, progress, slow=True, on_result=finished)
    status.empty()
    return found


def run() -> None:
    st.title("Images")
    st.caption("Pick a photo, the classes to explain and several methods; compare the maps side by side.")
    from ui.job_results import job_input  # a batch job's row, opened from the Gallery

    chosen = job_input() or choose_input()
    if chosen is None:
        return
    shared, key, rgb, x, context, probs = (chosen.shared, chosen.key, chosen.rgb, chosen.x, chosen.context,
                                           chosen.probs)
    model = shared.model
    top = np.argsort(probs)[::-1][:5]
    left, right = st.columns([1, 1])
    left.plotly_chart(photo_figure(rgb, title="What the model sees", height=360), key="img_photo")
    right.plotly_chart(topk_bar([model.labels[i] for i in top], probs[top], highlight=0, title="Top-5 classes"),
                       key="img_topk")

    targets = choose_targets(model.labels, probs, context)
    picker, every = st.columns([6, 1], vertical_alignment="bottom")
    offered = image_methods(model.net)
    every.button("All methods", key="img_all_methods", on_click=lambda: widgets.write("img_methods", offered),
                 help="Select every image method that applies to this model (the slow ones say how long they will "
                      "take).")
    variants = picker.multiselect("Methods (one map each)", offered, format_func=label, key="img_methods",
                                  **widgets.kept("img_methods", default_methods(), offered, many=True))
    if note := not_offered(model.net):
        st.caption(note)
    with panel("Layers"):
        layer = choose_layer(model)
    options = method_options(model)
    display = display_options()
    if not variants:
        st.info("Pick at least one method.")
        return

    st.session_state[LAST_IMAGES] = {"methods": list(variants), "targets": list(targets), "layer": layer, "options": options,
                                     **({"sample": key.split(":", 1)[1]} if key.startswith("sample:") else {})}
    with panel("The maps"):
        status, slot = st.empty(), st.empty()
        titles = [row_title(t, model.labels, probs, int(np.argmax(probs))) for t in targets]
        results = compute_maps(shared, x, context, variants, targets, layer, options)
        results |= cached_maps(context, variants, targets, layer, options)  # slow maps of earlier runs
        todo = missing_maps(context, variants, targets, layer, options)
        fig = show_grid(slot, rgb, results, variants, targets, titles, display["columns"], frozenset(todo),
                        key="img_grid_busy" if todo else "img_grid")
        if todo:
            results |= compute_slow(shared, x, context, variants, targets, layer, options, results, todo, status,
                                    lambda done: show_grid(slot, rgb, done, variants, targets, titles, display["columns"],
                                                           frozenset(t for t in todo if t not in done),
                                                           key=f"img_grid_busy_{len(done)}"))
            fig = show_grid(slot, rgb, results, variants, targets, titles, display["columns"])
        if st.button("Score these maps (deletion / insertion AUC)", key="img_score",
                     help="Removes / inserts pixels in order of importance (20 steps) and measures the class "
                          "probability; lower deletion AUC and higher insertion AUC are better."):
            bar = st.progress(0.0, text="Scoring the maps…")
            score_results(shared, x, results, targets,
                          lambda done, total: bar.progress(done / max(total, 1), text=f"Scoring: {done}/{total} images"))
            bar.empty()
        for target in targets:
            for column, variant in zip(st.columns(len(variants)), variants):
                column.caption(facts(results[variant, target], model.labels))
        with st.expander("What do these colours mean?", expanded=len(variants) > 1):
            for variant in variants:
                st.markdown(caption(variant))
        maps = grid_arrays(results, variants, targets)
        downloads(rgb, maps, variants, targets, model.labels, fig, results)
        export_report_button(
            lambda: [image_report_section(model, rgb, key, probs, results, variants, targets, layer,
                                          initial_scales(maps, variants), INITIAL["opacity"])],
            title=f"Images: {key.split(':', 1)[-1]}", key="img_report",
            png=lambda: grid_png(rgb, maps, [model.labels[t] for t in targets],
                                 [label(v) for v in variants], initial_scales(maps, variants), INITIAL["opacity"]),
        )
    st.caption(f"Explainer runs in this session: {explainer_runs()}. Display changes reuse the computed maps.")


if __name__ == "__main__":
    from pages import serve_from_entry

    serve_from_entry()
