"""Presentation page, for people who never wrote torch: one photo, the prediction, a few large maps
with one plain sentence each, and nothing else; the same view downloads as a self-contained report.

Its choices (photo, methods, class) sit in the sidebar and start from the Images page's latest ones.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import explainers
from figures.image import overlay_figure, photo_figure
from figures.scales import grid_presets
from figures.style import PLOT_CONFIG
from reports import Section
from ui.image_inputs import choose_input
from ui.image_results import LAST_IMAGES, compute_maps, map_kinds
from ui.methods import PAGE_DEFAULTS, default_methods, image_methods, label, page_options
from ui.report_button import export_report_button

OPTIONS = page_options(PAGE_DEFAULTS)
"""The Images page's default method options (so the maps come from the same cache)."""
MAP_PX = 460
PER_LINE = 2


def plain_caption(variant: str) -> str:
    """The record's one-sentence caption (what the colours mean), nothing more."""
    return explainers.method(variant).caption


def overlays(rgb, results, variants, target) -> list[tuple[str, str, str, object]]:
    """(name, label, caption, large overlay figure) per method with a map, each on its own honest scale."""
    out = []
    kinds = map_kinds(variants)
    for variant, kind in zip(variants, kinds):
        result = results.get((variant, target))
        if result is None or result.heat is None:
            continue
        scale = grid_presets([[result.heat]], [kind])["own", True][0][0]
        fig = overlay_figure(rgb, result.heat, scale, opacity=0.55, height=MAP_PX)
        out.append((variant, label(variant), plain_caption(variant), fig))
    return out


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
        st.session_state.setdefault("present_methods", [v for v in last.get("methods", default_methods())
                                                         if v in image_methods()])
        variants = st.multiselect("Methods", image_methods(), format_func=label, key="present_methods")
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
    with st.spinner("Computing the maps…"):
        results = compute_maps(chosen.shared, chosen.x, chosen.context, variants, [target], model.default_layer, OPTIONS)
        results |= compute_maps(chosen.shared, chosen.x, chosen.context, variants, [target], model.default_layer,
                                OPTIONS, slow=True)
    shown = overlays(rgb, results, variants, target)
    for start in range(0, len(shown), PER_LINE):
        for column, (variant, title, text, fig) in zip(st.columns(PER_LINE), shown[start:start + PER_LINE]):
            column.markdown(f"#### {title}")
            column.plotly_chart(fig, key=f"present_map_{variant}", config=PLOT_CONFIG)
            column.markdown(text)
    failed = [label(v) for v in variants if results.get((v, target)) is not None and results[v, target].error]
    if failed:
        st.caption(f"Not shown (they cannot run on this model or layer): {', '.join(failed)}.")

    def sections() -> list[Section]:
        prediction = [(model.labels[i], float(probs[i])) for i in order[:3]]
        figures = [("The photo", photo_figure(rgb, height=MAP_PX))]
        figures += [(f"{title}: {text}", fig) for _, title, text, fig in overlays(rgb, results, variants, target)]
        return [Section(f"{name}: {model.labels[target]}", prediction=prediction, figures=figures)]

    export_report_button(sections, title=f"What the model sees in {name}", key="present_report",
                         file_name="presentation.html", label="Download this view (HTML)")


if __name__ == "__main__":
    from pages import serve_from_entry

    serve_from_entry()
