"""Gallery page: many photos x several methods in batches; a table to find the cases worth a closer look."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import models
from figures.export import maps_npz
from figures.image import map_grid
from figures.scales import grid_presets
from figures.style import PLOT_CONFIG
from ui.gallery_inputs import MAX_IMAGES, read_uploads
from ui.gallery_results import Item, disagreement, gallery_maps
from ui.guard import panel
from ui.image_inputs import choose_model
from ui.image_results import cached_predictions, map_kinds
from ui.methods import PAGE_DEFAULTS, default_methods, image_methods, label, not_offered, page_options
from ui.report_button import export_report_button, image_report_section

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff", "zip"]
OPTIONS = page_options(PAGE_DEFAULTS)
"""The Images page's default method options, so both pages share cached maps."""
OPACITY = 0.55
"""The grids' starting opacity (each grid's slider changes it in the browser)."""
SORTS = {"disagreement": "Method disagreement (high first)", "confidence_low": "Confidence (low first)",
         "confidence_high": "Confidence (high first)", "name": "Name"}


def choose_images(model) -> list[Item]:
    """The bundled samples, or uploaded images / zips (hostile: capped, skipped files listed with reasons)."""
    source = st.radio("Images", ["Bundled samples", "Upload"], horizontal=True, key="gal_source")
    if source == "Bundled samples":
        named = [(name, models.load_sample(name), f"sample:{name}") for name in models.sample_names()]
    else:
        uploads = st.file_uploader(f"Images or zip archives (up to {MAX_IMAGES} images)", type=UPLOAD_TYPES,
                                   accept_multiple_files=True, key="gal_upload")
        if not uploads:
            st.info("Upload several images, or a zip of them.")
            return []
        intake = read_uploads((u.name, u.getvalue()) for u in uploads)
        for note in intake.notes:
            st.warning(note, icon=":material/warning:")
        if intake.skipped:
            with st.expander(f"{len(intake.skipped)} file(s) skipped"):
                st.dataframe(pd.DataFrame([{"File": s.name, "Reason": s.reason} for s in intake.skipped]),
                             hide_index=True)
        named = [(g.name, g.image, g.key) for g in intake.images]
    items = []
    for name, image, key in named:
        rgb = model.resize(image)
        items.append(Item(name, (model.name, model.description, key), rgb, model.to_tensor(rgb)))
    return items


def table(items: list[Item], probs: list[np.ndarray], maps: list[dict], labels: list[str]) -> pd.DataFrame:
    rows = []
    for item, p, results in zip(items, probs, maps):
        score, pair = disagreement(results)
        rows.append({"Image": item.name, "Predicted": labels[int(np.argmax(p))], "Confidence": float(np.max(p)),
                     "Disagreement": score, "Least agreeing pair": pair,
                     "Failed": ", ".join(label(v) for v, r in results.items() if r.error)})
    return pd.DataFrame(rows)


def order(frame: pd.DataFrame, sort: str) -> list[int]:
    column, ascending = {"disagreement": ("Disagreement", False), "confidence_low": ("Confidence", True),
                         "confidence_high": ("Confidence", False), "name": ("Image", True)}[sort]
    return list(frame.sort_values(column, ascending=ascending, na_position="last", kind="stable").index)


def run() -> None:
    st.title("Gallery")
    st.caption("Run several methods over many photos at once, then sort to find the ones worth a closer look.")
    from ui.job_results import job_section  # a batch job's output (python -m jobs), read back

    if job_section():
        return
    shared = choose_model("gal")
    model = shared.model
    with panel("The images"):
        items = choose_images(model)
    if not items:
        return
    variants = st.multiselect("Methods (one column each)", image_methods(model.net), default=default_methods(),
                              format_func=label, key="gal_methods")
    if note := not_offered(model.net):
        st.caption(note)
    batch = st.sidebar.slider("Batch size", 1, 16, 8, key="gal_batch")
    columns = st.sidebar.slider("Maps per line", 1, 8, 4, key="gal_columns",
                                help="Maps keep their size; more methods wrap onto more lines. Opacity, colours and "
                                     "scales are set above each grid.")
    opacity = OPACITY
    layer = model.default_layer
    st.caption(f"{len(items)} images · model {model.name} · layer `{layer}` (CAM family) · target: each image's "
               "predicted class.")
    if not variants:
        st.info("Pick at least one method.")
        return
    signature = (model.name, tuple(i.context for i in items), tuple(variants))
    if st.button("Explain all", type="primary", key="gal_run"):
        st.session_state["gal_ran"] = signature
    if st.session_state.get("gal_ran") != signature:
        st.info("Press **Explain all** to compute the maps (cached: later views rerun no model).")
        return

    with panel("The maps"):
        probs = [cached_predictions(shared, item.x, item.context) for item in items]
        targets = [int(np.argmax(p)) for p in probs]
        bar = st.progress(0.0, text="Explaining…")
        maps = gallery_maps(shared, items, targets, variants, layer, OPTIONS,
                            st.session_state.setdefault("image_maps", {}), batch,
                            lambda done, total: bar.progress(done / total, text=f"{done}/{total} images"))
        bar.empty()
        frame = table(items, probs, maps, model.labels)
        sort = st.selectbox("Sort by", list(SORTS), format_func=SORTS.get, key="gal_sort")
        ranked = order(frame, sort)
        st.dataframe(frame.loc[ranked], hide_index=True, key="gal_table",
                     column_config={"Confidence": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                                  max_value=1),
                                    "Disagreement": st.column_config.NumberColumn(
                                        format="%.2f", help="1 - mean Spearman rank correlation between methods")})
        shown = st.slider("Images in the grid", 1, len(items), min(len(items), 8), key="gal_shown")
        kinds = map_kinds(variants)
        for i in ranked[:shown]:
            cells = [[maps[i][v].heat for v in variants]]
            notes = [["failed: " + maps[i][v].error if maps[i][v].error else None for v in variants]]
            fig = map_grid(items[i].rgb, cells, [f"{items[i].name}: {model.labels[targets[i]]} ({np.max(probs[i]):.1%})"],
                           [label(v) for v in variants], kinds=kinds, columns=columns, opacity=opacity, notes=notes)
            st.plotly_chart(fig, key=f"gal_grid_{i}", width="content", config=PLOT_CONFIG)

        def sections():
            return [image_report_section(model, items[i].rgb, items[i].name, probs[i],
                                         {(v, targets[i]): maps[i][v] for v in variants}, variants, [targets[i]],
                                         layer, grid_presets([[maps[i][v].heat for v in variants]], kinds)["own", True],
                                         opacity) for i in ranked]

        def npz() -> bytes:
            named = {f"{i:03d}__{v}": maps[i][v].heat for i in range(len(items)) for v in variants
                     if maps[i][v].heat is not None}
            meta = {"images": [item.name for item in items], "targets": [model.labels[t] for t in targets],
                    "methods": [label(v) for v in variants], "layer": layer, "model": model.name}
            return maps_npz(named, meta)

        export_report_button(sections, title=f"Gallery: {len(items)} images", key="gal_report",
                             file_name="gallery-report.html")
        st.download_button("All maps as NPZ (raw values)", npz, "gallery-maps.npz", "application/octet-stream",
                           key="gal_dl_npz", on_click="ignore")


if __name__ == "__main__":
    from pages import serve_from_entry

    serve_from_entry()
