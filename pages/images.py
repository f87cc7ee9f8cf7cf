"""Images page: pick a photo, a model, target classes and a layer; compare methods side by side."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explainers.precision import native_bfloat16
from figures.export import grid_png, maps_npz, to_html
from figures.image import map_grid, overlay_figure, photo_figure, topk_bar
from figures.scales import DIVERGING, SCALE_MODES, scale_for
from ui.evaluation_results import score_caption
from ui.guard import panel
from ui.image_inputs import choose_input
from ui.image_results import (
    MapResult,
    compute_maps,
    explainer_runs,
    score_results,
)
from ui.methods import (
    PAGE_DEFAULTS,
    caption,
    default_methods,
    fast_mode_note,
    image_methods,
    label,
    page_options,
    signed,
    slow,
)
from ui.report_button import export_report_button, image_report_section

COLORSCALES = ["Inferno", "Viridis", "Jet", "Hot", "Greys"]
SCALE_LABELS = {"per_map": "Per map", "shared": "Shared across the grid", "signed": "Signed (centred on 0)"}
BASELINES = {"zero": "Zero tensor (mean image)", "black": "Black image", "blur": "Blurred photo", "uniform": "Uniform noise"}
MAX_TARGETS = 4


def choose_targets(labels: list[str], probs: np.ndarray, context: tuple) -> list[int]:
    """Target classes, one grid row each: the predicted class by default; top-k first, all searchable.

    A new image or model starts again from its own predicted class.
    """
    order = [int(i) for i in np.argsort(probs)[::-1]]
    if st.session_state.get("img_targets_for") != context:
        st.session_state["img_targets_for"] = context
        st.session_state["img_targets"] = order[:1]
    chosen = st.multiselect(
        "Target classes (one row each; type to search all classes)",
        order,
        format_func=lambda i: f"{labels[i]} ({probs[i]:.1%})",
        max_selections=MAX_TARGETS,
        key="img_targets",
    )
    return chosen or order[:1]


def choose_layer(model) -> str:
    """Target layer for the CAM family: 4-D outputs with their shapes, the automatic one marked."""
    candidates = [info for info in model.layers() if len(info.shape) == 4]
    if not candidates:
        st.warning("This model has no layer with a (C, H, W) output: CAM-family methods cannot run.")
        return model.default_layer
    auto = model.default_layer
    names = [info.name for info in candidates]
    shapes = {info.name: info.shape for info in candidates}

    def describe(name: str) -> str:
        _, c, h, w = shapes[name]
        return f"{name}  ({c}x{h}x{w}){'  - automatic' if name == auto else ''}"

    layer = st.selectbox("Target layer (CAM family)", names, index=names.index(auto) if auto in names else len(names) - 1,
                         format_func=describe, key="img_layer")
    _, _, h, w = shapes[layer]
    if h * w == 1:
        st.warning("This layer's output is 1x1: its map cannot show where anything is.")
    elif auto in shapes and h * w > shapes[auto][2] * shapes[auto][3]:
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
    widgets = {"steps": steps, "baseline": baseline, "tolerance": PAGE_DEFAULTS["tolerance"] if adaptive else 0.0,
               "max_steps": max(PAGE_DEFAULTS["max_steps"], steps), "samples": samples, "noise_level": noise, "seed": seed}
    if baseline == "black":
        widgets["black"] = tuple(model.to_tensor(np.zeros((1, 1, 3), np.uint8))[0, :, 0, 0].tolist())
    if fast:
        widgets["precision"] = "bfloat16"
    return page_options(widgets)


def display_options() -> dict:
    with st.sidebar.expander("Display", expanded=True):
        return {
            "opacity": st.slider("Map opacity", 0.0, 1.0, 0.55, 0.05, key="img_opacity"),
            "colorscale": st.selectbox("Colour scale", COLORSCALES, key="img_colorscale"),
            "mode": st.radio("Scale", SCALE_MODES, format_func=SCALE_LABELS.get, key="img_scale_mode"),
            "clip": st.checkbox("Clip the top 0.5% of values", value=True, key="img_clip"),
        }


def grid_arrays(results: dict, variants: list[str], targets: list[int]) -> list[list[np.ndarray | None]]:
    return [[results.get((v, t), MapResult(v, t, None)).heat for v in variants] for t in targets]


def scales_for(maps: list[list[np.ndarray | None]], variants: list[str], display: dict):
    """Colour scales for the grid: signed methods always diverging, others per the chosen mode."""
    flat = [m for row in maps for m in row]
    is_signed = [signed(v) or display["mode"] == "signed" for _ in maps for v in variants]
    scales = scale_for(flat, display["mode"], is_signed, 99.5 if display["clip"] else None,
                       sequential=display["colorscale"], diverging=DIVERGING)
    cols = len(variants)
    return [scales[i * cols:(i + 1) * cols] for i in range(len(maps))]


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


def show_grid(slot, rgb, maps, variants, targets, labels, display, stage: str):
    """Draw the map grid into ``slot``; returns the figure and its scales (for the downloads)."""
    scales = scales_for(maps, variants, display)
    fig = map_grid(rgb, maps, row_titles=[labels[t] for t in targets], col_titles=[label(v) for v in variants],
                   scales=scales, opacity=display["opacity"])
    slot.plotly_chart(fig, key=f"img_grid_{stage}")
    return fig, scales


def downloads(rgb, maps, variants, targets, labels, display, fig, scales, results) -> None:
    """Download buttons; every file is built only when its button is clicked (deferred data)."""
    row_titles = [labels[t] for t in targets]
    col_titles = [label(v) for v in variants]
    named = {f"{v}__{labels[t]}": r.heat for (v, t), r in results.items() if r.heat is not None}
    meta = {"targets": row_titles, "methods": col_titles}
    left, middle, right = st.columns(3)
    left.download_button("Grid as PNG", lambda: grid_png(rgb, maps, row_titles, col_titles, scales, display["opacity"]),
                         "maps.png", "image/png", key="img_dl_png", on_click="ignore")
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
            return to_html(overlay_figure(rgb, named[pick], opacity=display["opacity"], title=title))

        a, b = st.columns(2)
        a.download_button("This map as NPZ", lambda: maps_npz({pick: named[pick]}, meta), f"{pick}.npz",
                          key="img_dl_one_npz", on_click="ignore")
        b.download_button("This map as HTML", single_html, f"{pick}.html", "text/html",
                          key="img_dl_one_html", on_click="ignore")


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
    variants = st.multiselect("Methods (one column each)", image_methods(), default=default_methods(),
                              format_func=label, key="img_methods")
    with panel("Layers"):
        layer = choose_layer(model)
    options = method_options(model)
    display = display_options()
    if not variants:
        st.info("Pick at least one method.")
        return

    with panel("The maps"):
        slot = st.empty()
        results = compute_maps(shared, x, context, variants, targets, layer, options)
        pending = [v for v in variants if slow(v)]
        fig, scales = show_grid(slot, rgb, grid_arrays(results, variants, targets), variants, targets, model.labels,
                                display, "fast")
        if pending:
            bar = st.progress(0.0, text="Slow methods…")

            def progress(label: str, target: int, done: int, total: int) -> None:
                bar.progress(done / max(total, 1), text=f"{label} for {model.labels[target]}: {done}/{total} steps")

            results |= compute_maps(shared, x, context, variants, targets, layer, options, progress, slow=True)
            bar.empty()
            fig, scales = show_grid(slot, rgb, grid_arrays(results, variants, targets), variants, targets, model.labels,
                                    display, "all")
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
        with st.expander("What do these colours mean?"):
            for variant in variants:
                st.markdown(caption(variant))
        maps = grid_arrays(results, variants, targets)
        downloads(rgb, maps, variants, targets, model.labels, display, fig, scales, results)
        export_report_button(
            lambda: [image_report_section(model, rgb, key, probs, results, variants, targets, layer, scales,
                                          display["opacity"])],
            title=f"Images: {key.split(':', 1)[-1]}", key="img_report",
            png=lambda: grid_png(rgb, maps, [model.labels[t] for t in targets],
                                 [label(v) for v in variants], scales, display["opacity"]),
        )
    st.caption(f"Explainer runs in this session: {explainer_runs()}. Display changes reuse the computed maps.")


if __name__ == "__main__":
    from pages import serve_from_entry

    serve_from_entry()
