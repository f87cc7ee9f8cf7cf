"""Presentation page, for people who never wrote torch: one photo, the prediction, a few large maps
with one plain sentence each, and nothing else; the same view downloads as a self-contained report.

Its choices (photo, methods, class) sit in the sidebar and start from the Images page's latest ones;
the maps use that page's layer and method options, so maps computed there appear at once. Maps are
drawn as they finish, under one progress bar that counts them and names the running method.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

import explainers
from figures.image import overlay_figure, photo_figure
from figures.scales import MapKind, grid_presets
from figures.style import PLOT_CONFIG
from reports import Section
from ui import widgets
from ui.image_inputs import choose_input
from ui.image_results import LAST_IMAGES, MapResult, compute_maps, map_kinds
from ui.methods import PAGE_DEFAULTS, default_methods, image_methods, label, page_options
from ui.report_button import export_report_button

OPTIONS = page_options(PAGE_DEFAULTS)
"""The method options when the Images page has not chosen any (its defaults, so both share cached maps)."""
MAP_PX = 460
PER_LINE = 2


def plain_caption(variant: str) -> str:
    """The record's one-sentence caption (what the colours mean), nothing more."""
    return explainers.method(variant).caption


def overlay(rgb: np.ndarray, heat: np.ndarray, kind: MapKind):
    """One large map over the photo on its own honest scale (diverging around 0 when signed, clipped at p99.5);
    the colour bar has numbers only (the caption under the map says in words what the colours mean)."""
    scale = grid_presets([[heat]], [kind])["own", True][0][0]
    return overlay_figure(rgb, heat, dataclasses.replace(scale, label=""), opacity=0.55, height=MAP_PX)


def layer_and_options(model, last: dict) -> tuple[str, dict]:
    """The Images page's layer (when this model has it) and method options, else the defaults."""
    names = {info.name for info in model.layers()}
    layer = last.get("layer") if last.get("layer") in names else model.default_layer
    return layer, last.get("options") or OPTIONS


def run() -> None:
    last = st.session_state.get(LAST_IMAGES, {})
    if "sample" in last:
        st.session_state.setdefault("img_sample", last["sample"])
    with st.sidebar:
        st.subheader("What to present")
        chosen = choose_input()
    if chosen is None:
        return
    model, rgb, probs = chosen.shared.model, chosen.rgb, chosen.probs
    order = [int(i) for i in np.argsort(probs)[::-1]]
    with st.sidebar:
        offered = image_methods(model.net)
        variants = st.multiselect("Methods", offered, format_func=label, key="present_methods",
                                  **widgets.kept("present_methods", last.get("methods", default_methods()), offered,
                                                 many=True))
        target = st.selectbox("Class to explain", order[:5], format_func=lambda i: f"{model.labels[i]} ({probs[i]:.1%})",
                              key="present_target")
    name = chosen.key.split(":", 1)[-1]
    st.title(f"What the model sees in “{name}”")
    st.markdown(f"### The model says **{model.labels[order[0]]}**, {probs[order[0]]:.0%} sure.")
    others = ", ".join(f"{model.labels[i]} {probs[i]:.0%}" for i in order[1:3])
    st.caption(f"Next most likely: {others}." + (f" The maps explain **{model.labels[target]}**."
                                                 if target != order[0] else ""))
    st.plotly_chart(photo_figure(rgb, height=MAP_PX), key="present_photo", config=PLOT_CONFIG)
    if not variants:
        st.info("Choose the methods to show in the sidebar.")
        return

    layer, options = layer_and_options(model, last)
    kinds = dict(zip(variants, map_kinds(variants)))
    args = (chosen.shared, chosen.x, chosen.context, variants, [target], layer, options)
    results = compute_maps(*args)
    failed = [v for v in variants if (v, target) in results and results[v, target].heat is None]
    shown = [v for v in variants if v not in failed]
    status, cells = st.empty(), {}
    for start in range(0, len(shown), PER_LINE):
        for column, variant in zip(st.columns(PER_LINE), shown[start:start + PER_LINE]):
            cells[variant] = column.empty()
    note = st.empty()

    def draw(variant: str) -> None:
        """The method's cell: its name, its map (or "computing…") and its caption; emptied when it fails."""
        result = results.get((variant, target))
        if result is not None and result.heat is None:
            cells[variant].empty()
            failed.append(variant)
            return
        with cells[variant].container():
            st.markdown(f"#### {label(variant)}")
            if result is None:
                st.caption("computing…")
            else:
                st.plotly_chart(overlay(rgb, result.heat, kinds[variant]), key=f"present_map_{variant}",
                                config=PLOT_CONFIG)
            st.markdown(plain_caption(variant))

    for variant in shown:
        draw(variant)
    total = max(len(shown), 1)

    def count(extra: str = "", passes: float = 0.0) -> None:
        done = sum((v, target) in results for v in shown)
        bar.progress(min((done + passes) / total, 1.0), text=f"{done} of {len(shown)} maps{extra}")

    bar = status.progress(0.0)
    count()

    def progress(method: str, _target: int, done: int, of: int) -> None:
        count(f" · {method}: {done}/{of} passes", done / max(of, 1))

    def finished(result: MapResult) -> None:
        results[result.variant, target] = result
        count()
        draw(result.variant)

    for result in compute_maps(*args, progress=progress, slow=True, on_result=finished).values():
        if (result.variant, target) not in results:  # cached slow maps arrive without on_result
            finished(result)
    status.empty()
    if failed:
        note.caption(f"Not shown (they cannot run on this model or layer): {', '.join(label(v) for v in failed)}.")

    def sections() -> list[Section]:
        prediction = [(model.labels[i], float(probs[i])) for i in order[:3]]
        figures = [("The photo", photo_figure(rgb, height=MAP_PX))]
        figures += [(f"{label(v)}: {plain_caption(v)}", overlay(rgb, results[v, target].heat, kinds[v]))
                    for v in variants if results[v, target].heat is not None]
        return [Section(f"{name}: {model.labels[target]}", prediction=prediction, figures=figures)]

    export_report_button(sections, title=f"What the model sees in {name}", key="present_report",
                         file_name="presentation.html", label="Download this view (HTML)")


if __name__ == "__main__":
    from pages import serve_from_entry

    serve_from_entry()
