"""Filters page: what a convolutional layer has learned, as the feature maps an image produces and
as the patterns its channels (or classes) respond to most (activation maximisation)."""

from __future__ import annotations

import re

import numpy as np
import streamlit as st

from explainers.activation_max import ACTIVATIONS, MAX_UNITS, PARAMETERISATIONS
from explainers.capture import find_module
from figures.filters import channel_grid, optimised_grid
from ui.filter_results import cached_feature_maps, filter_runs, optimised_units
from ui.guard import panel
from ui.image_inputs import choose_input

SORTS = {"mean": "Mean activation", "grad_cam": "Grad-CAM weight for a class"}
PAGE_SIZES = [16, 32, 64]
COLORSCALES = ["Viridis", "Inferno", "Greys", "RdBu"]
SIZES = [64, 96, 128, 160, 224]
UNIT_SOURCES = {"top": "Top channels in the order above", "numbers": "Channel numbers", "classes": "Class logits"}
PARAM_LABELS = {"fourier": "Decorrelated Fourier", "pixel": "Pixels"}


def counted(count: int, noun: str) -> str:
    """"1 class", "3 classes", "2 channels"."""
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun}{'es' if noun.endswith(('s', 'x', 'ch', 'sh')) else 's'}"


def choose_layer(model) -> str:
    """Layers with (C, H, W) outputs, the automatic one first selected; every layer on request."""
    every = st.checkbox("List every layer (also those without channel maps)", key="flt_all_layers")
    infos = [info for info in model.layers() if every or len(info.shape) == 4]
    names = [info.name for info in infos]
    shapes = {info.name: info.shape for info in infos}
    auto = model.default_layer
    layer = st.selectbox("Layer", names, index=names.index(auto) if auto in names else len(names) - 1,
                         format_func=lambda n: f"{n}  {tuple(shapes[n][1:])}{'  - automatic' if n == auto else ''}",
                         key="flt_layer")
    shape = shapes[layer]
    if len(shape) == 4 and shape[2] * shape[3] == 1:
        st.caption("This layer's maps are 1x1: each channel is a single number.")
    return layer


def class_picker(labels: list[str], probs: np.ndarray, label: str, key: str, many: bool):
    order = [int(i) for i in np.argsort(probs)[::-1]]
    fmt = lambda i: f"{labels[i]} ({probs[i]:.1%})"  # noqa: E731
    if many:
        return st.multiselect(label, order, default=order[:1], format_func=fmt, max_selections=MAX_UNITS, key=key)
    return st.selectbox(label, order, format_func=fmt, key=key)


def feature_maps_section(shared, x, context, layer, labels, probs):
    """The channel grid, paged and sorted; returns the feature maps (for "top channels")."""
    left, middle, right = st.columns(3)
    sort = left.radio("Sort channels by", list(SORTS), format_func=SORTS.get, key="flt_sort")
    target = class_picker(labels, probs, "Class (Grad-CAM weight)", "flt_target", many=False) if sort == "grad_cam" else None
    per_page = middle.select_slider("Maps per page", PAGE_SIZES, value=32, key="flt_per_page")
    colorscale = right.selectbox("Colour scale", COLORSCALES, key="flt_colorscale")
    shared_scale = right.checkbox("One colour scale for all maps", key="flt_shared_scale")
    fm = cached_feature_maps(shared, x, context, layer, sort, target)
    channels, (_, _, h, w) = fm.channels, fm.activations.shape
    pages = max(1, -(-channels // per_page))
    page = middle.number_input(f"Page (of {pages})", 1, pages, 1, key=f"flt_page_{layer}_{per_page}")
    shown = fm.order[0, (page - 1) * per_page: page * per_page].tolist()
    fig = channel_grid(fm.activations[0, shown].numpy(), shown, fm.scores[0, shown].tolist(),
                       score_label="mean" if sort == "mean" else "w", colorscale=colorscale, shared=shared_scale)
    st.plotly_chart(fig, key="flt_maps")
    why = "mean activation" if sort == "mean" else f"Grad-CAM weight for *{labels[int(fm.targets[0])]}*"
    st.caption(f"`{layer}`: {channels} channels of {h}x{w}, sorted by {why}, highest first; "
               f"channels {(page - 1) * per_page + 1}-{(page - 1) * per_page + len(shown)} of the order. "
               "Hover a cell for its channel, position and value.")
    return fm


def parse_channels(text: str, count: int) -> list[int]:
    """'3, 17, 40-47' -> [3, 17, 40, ..., 47], kept in range 0..count-1, order kept, no repeats."""
    chosen: list[int] = []
    for a, b in re.findall(r"(\d+)\s*(?:-\s*(\d+))?", text):
        for unit in range(int(a), int(b or a) + 1):
            if unit < count and unit not in chosen:
                chosen.append(unit)
            if len(chosen) > 4 * MAX_UNITS:
                return chosen
    return chosen


def optimisation_options() -> dict:
    with st.expander("Optimisation options"):
        a, b, c = st.columns(3)
        options = {
            "size": a.select_slider("Image size (pixels)", SIZES, value=128, key="flt_size"),
            "steps": a.slider("Steps", 8, 512, 64, key="flt_steps"),
            "lr": a.select_slider("Learning rate (Adam)", [0.01, 0.02, 0.05, 0.1, 0.2], value=0.05, key="flt_lr"),
            "seed": int(a.number_input("Seed", 0, 2**31 - 1, 0, key="flt_seed")),
            "parameterisation": b.radio("Parameterisation", PARAMETERISATIONS, format_func=PARAM_LABELS.get,
                                        key="flt_param"),
            "pre_activation": b.checkbox("Before the ReLU (for ReLU layers)", value=True, key="flt_pre"),
            "jitter": c.slider("Jitter (pixels)", 0, 32, 8, key="flt_jitter"),
            "scale": c.slider("Random scaling (±)", 0.0, 0.3, 0.05, 0.01, key="flt_scale"),
            "rotate": c.slider("Random rotation (± degrees)", 0.0, 30.0, 5.0, 1.0, key="flt_rotate"),
            "tv": c.slider("Total-variation penalty", 0.0, 5.0, 0.0, 0.1, key="flt_tv"),
        }
    return options


def choose_units(fm, labels, probs) -> tuple[str | None, list[int], str]:
    """(layer or None for classes, units, what they are); too many channels are capped with a message."""
    source = st.radio("Optimise", list(UNIT_SOURCES), format_func=UNIT_SOURCES.get, horizontal=True,
                      key="flt_units_source")
    if source == "classes":
        return None, class_picker(labels, probs, f"Classes (up to {MAX_UNITS})", "flt_classes", many=True), "class"
    if source == "top":
        count = st.slider("How many", 1, MAX_UNITS, 8, key="flt_top")
        return fm.layer, fm.order[0, :count].tolist(), "channel"
    text = st.text_input("Channels (e.g. 3, 17, 40-47)", "0-7", key="flt_channels")
    units = parse_channels(text, fm.channels)
    if not units:
        st.info(f"Type channel numbers between 0 and {fm.channels - 1}.")
    elif len(units) > MAX_UNITS:
        st.warning(f"At most {MAX_UNITS} channels per run (memory and time grow with each one): "
                   f"optimising the first {MAX_UNITS} of the {len(units)} asked.")
        units = units[:MAX_UNITS]
    return fm.layer, units, "channel"


def activation_section(shared, fm, labels, probs) -> None:
    """Units to optimise, options, a button for the ones not cached yet, and the grid of results."""
    layer, units, kind = choose_units(fm, labels, probs)
    options = optimisation_options()
    if not units:
        return
    results = optimised_units(shared, layer, units, options, compute=False)
    missing = [u for u in units if u not in results]
    if missing:
        run = st.button(f"Optimise {counted(len(missing), kind)}", type="primary",
                        key="flt_run")
        if not run:
            st.info(f"{len(results)} of {len(units)} already optimised with these options; "
                    f"press the button for the rest ({options['steps']} steps at {options['size']}x{options['size']}).")
        else:
            bar = st.progress(0.0, text="Optimising…")

            def progress(done: int, total: int) -> None:
                bar.progress(done / total, text=f"Optimising {counted(len(missing), kind)} together: step {done}/{total}")

            results = optimised_units(shared, layer, units, options, progress)
            bar.empty()
    ready = [u for u in units if u in results]
    if not ready:
        return
    name = (lambda u: labels[u]) if kind == "class" else (lambda u: f"#{u}")
    titles = [f"{name(u)}: {results[u].activation:.3g} (noise {results[u].noise:.3g})" for u in ready]
    images = np.stack([results[u].image for u in ready])
    st.plotly_chart(optimised_grid(images, titles), key="flt_optimised")
    before_relu = layer is not None and options["pre_activation"] and isinstance(find_module(shared.model.net, layer), ACTIVATIONS)
    what = "class logit" if kind == "class" else f"mean {'input (before the ReLU)' if before_relu else 'activation'} of `{layer}`"
    seconds = np.mean([results[u].seconds for u in ready])
    st.caption(f"Each image maximises its {kind}'s {what} (value after the colon; a uniform-noise image "
               f"gives the value in brackets). About {seconds:.1f} s per {kind} when run together.")


def run() -> None:
    st.title("Filters")
    st.caption("What a layer has learned: the feature maps a photo produces, and the pattern each channel "
               "responds to most.")
    chosen = choose_input()
    if chosen is None:
        return
    shared, x, context, probs = (chosen.shared, chosen.x, chosen.context,
                                 chosen.probs)
    model = shared.model
    layer = choose_layer(model)
    maps_tab, max_tab = st.tabs(["Feature maps", "Activation maximisation"])
    fm = None
    with maps_tab, panel("Feature maps"):
        fm = feature_maps_section(shared, x, context, layer, model.labels, probs)
    with max_tab:
        if fm is None:
            st.info("Pick a layer with channel maps first.")
        else:
            with panel("Activation maximisation"):
                activation_section(shared, fm, model.labels, probs)
    st.caption(f"Model runs in this session: {filter_runs()}. Display changes reuse the computed results.")


if __name__ == "__main__":
    from pages import serve_from_entry

    serve_from_entry()
