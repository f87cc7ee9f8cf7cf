"""Evaluate page: can these maps be trusted? Faithfulness, randomisation sanity check, agreement, IG convergence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import evaluation
import models
from figures.evaluation import agreement_heatmap, correlation_cascade, curves_figure
from figures.evaluation_extra import lines_png
from figures.export import grid_png, to_html
from figures.image import map_grid
from ui import evaluation_results as results
from ui.guard import panel
from ui.methods import default_methods, image_methods, label
from ui.resources import image_model

REPLACEMENTS = {"zero": "Grey / mean colour (zero tensor)", "blur": "Blurred photo"}
IG_STEPS = [8, 16, 32, 64, 128]
MAX_CASCADE_COLUMNS = 6




def choose() -> tuple:
    """Sidebar and top controls: (shared model, rgb, x, context, target, methods, curve options)."""
    shared = image_model()
    model = shared.model
    sample = st.selectbox("Sample photo", models.sample_names(), key="ev_sample")
    rgb = model.resize(models.load_sample(sample))
    x = model.to_tensor(rgb)
    context = (model.name, f"sample:{sample}")
    probs = results.predictions(shared, x, context)
    top = [int(i) for i in np.argsort(probs)[::-1][:5]]
    target = st.selectbox("Class to explain", top, format_func=lambda i: f"{model.labels[i]} ({probs[i]:.1%})",
                          key="ev_target")
    methods = st.multiselect("Methods", image_methods(), default=default_methods(), format_func=label,
                             key="ev_methods")
    with st.sidebar.expander("Deletion / insertion", expanded=True):
        options = {
            "steps": st.slider("Steps (k)", 5, 50, 20, key="ev_steps"),
            "replacement": st.radio("Removed pixels become", list(REPLACEMENTS), format_func=REPLACEMENTS.get,
                                    key="ev_replacement"),
            "random_maps": st.slider("Random maps in the floor", 1, 5, 3, key="ev_random_maps"),
        }
    return shared, rgb, x, context, target, methods, options


def auc_table(scores: dict) -> pd.DataFrame:
    rows = [{"method": label(m), "deletion AUC": s.deletion_auc, "insertion AUC": s.insertion_auc,
             "no better than random": s.no_better_than_random} for m, s in scores.items()]
    floor = next(iter(scores.values()))
    rows.append({"method": "random floor", "deletion AUC": floor.random_deletion_auc,
                 "insertion AUC": floor.random_insertion_auc, "no better than random": None})
    return pd.DataFrame(rows)


def figure_downloads(fig, png: bytes | None, name: str, key: str) -> None:
    left, right = st.columns(2)
    left.download_button("Figure as HTML", lambda: to_html(fig), f"{name}.html", "text/html", key=f"{key}_html",
                         on_click="ignore")
    if png is not None:
        right.download_button("Figure as PNG", png, f"{name}.png", "image/png", key=f"{key}_png", on_click="ignore")


def faithfulness_tab(shared, x, context, heats, target, options) -> None:
    bar = st.progress(0.0, text="Deletion / insertion…")
    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Deletion / insertion: {done}/{total} images")

    scores = results.faithfulness(shared, x, context, heats, target, options, progress)
    bar.empty()
    first = next(iter(scores.values()))
    for kind, ylab in (("deletion", "fraction of pixels removed"), ("insertion", "fraction of pixels inserted")):
        curves = {label(m): getattr(s, kind) for m, s in scores.items()}
        aucs = {label(m): getattr(s, f"{kind}_auc") for m, s in scores.items()}
        aucs["random"] = getattr(first, f"random_{kind}_auc")
        random_curve = getattr(first, f"random_{kind}")
        fig = curves_figure(first.fractions, curves, random_curve, aucs, title=f"{kind.title()} curves", x_label=ylab)
        st.plotly_chart(fig, key=f"ev_{kind}")
        figure_downloads(fig, lines_png(first.fractions, curves, random_curve, f"{kind.title()} curves", ylab),
                         kind, f"ev_dl_{kind}")
    table = auc_table(scores)
    st.dataframe(table, hide_index=True, key="ev_auc_table")
    st.download_button("AUC table as CSV", table.to_csv(index=False), "auc.csv", "text/csv", key="ev_dl_auc",
                       on_click="ignore")
    flagged = [label(m) for m, s in scores.items() if s.no_better_than_random]
    if flagged:
        st.warning(f"No better than a random map: {', '.join(flagged)}.", icon=":material/warning:")
    st.caption(f"Score: softmax probability of the class. Lower deletion AUC and higher insertion AUC are better. "
               f"Random floor: mean of {options['random_maps']} random maps of 7x7 patches (seed 0).")


def agreement_tab(heats) -> None:
    if len(heats) < 2:
        st.info("Pick at least two methods to compare them.")
        return
    found = evaluation.agreement({label(m): h for m, h in heats.items()})
    left, right = st.columns(2)
    rho = agreement_heatmap(found.spearman, found.names, title="Rank correlation (Spearman, |map|)")
    iou = agreement_heatmap(found.top_k_iou, found.names, title="Top-10% pixels overlap (IoU)", metric="IoU",
                            zmin=0.0)
    left.plotly_chart(rho, key="ev_agree_rho")
    right.plotly_chart(iou, key="ev_agree_iou")
    csv = pd.concat({"spearman": pd.DataFrame(found.spearman, found.names, found.names),
                     "top10_iou": pd.DataFrame(found.top_k_iou, found.names, found.names)}).to_csv()
    st.download_button("Agreement matrices as CSV", csv, "agreement.csv", "text/csv", key="ev_dl_agree",
                       on_click="ignore")
    figure_downloads(rho, None, "agreement", "ev_dl_agree_fig")


def cascade_tab(shared, rgb, x, context, methods, target) -> None:
    labels = results.group_labels(shared, x, context)
    depth = st.slider("Randomise from the top down to block", 1, len(labels), min(4, len(labels)),
                      format="%d", key="ev_depth")
    st.caption(f"Randomised down to: {labels[depth - 1]} ({depth} of {len(labels)} blocks).")
    key = ("cascade", context, tuple(methods), target, depth)
    if st.button("Run the randomisation check", key="ev_run_cascade"):
        st.session_state.setdefault("ev_requested", set()).add(key)
    if key not in st.session_state.get("ev_requested", set()):
        st.info("Re-initialises the model's top blocks one by one on a copy and recomputes every map: "
                "a method whose map does not change is not explaining the model.")
        return
    bar = st.progress(0.0, text="Randomising…")
    cascade = results.cascade(shared, x, context, methods, target, depth,
                              lambda done, total: bar.progress(done / total, text=f"Randomised {done}/{total} blocks"))
    bar.empty()
    shown = sorted(set(np.linspace(0, depth - 1, min(depth, MAX_CASCADE_COLUMNS - 1)).round().astype(int)))
    grid = [[cascade.original[m], *[cascade.maps[m][d] for d in shown]] for m in methods]
    cols = ["original", *[f"to {cascade.depth_labels[d]}" for d in shown]]
    fig = map_grid(rgb, grid, row_titles=[label(m) for m in methods], col_titles=cols, cell_height=180)
    st.plotly_chart(fig, key="ev_cascade_maps")
    figure_downloads(fig, grid_png(rgb, grid, [label(m) for m in methods], cols, cell_px=160), "randomisation_maps",
                     "ev_dl_cmaps")
    corr = {label(m): c for m, c in cascade.correlation.items()}
    line = correlation_cascade(cascade.depth_labels, corr, title="Similarity to the trained model's map")
    st.plotly_chart(line, key="ev_cascade_corr")
    table = pd.DataFrame(corr, index=cascade.depth_labels).rename_axis("randomised down to")
    st.download_button("Correlations as CSV", table.to_csv(), "randomisation.csv", "text/csv", key="ev_dl_corr",
                       on_click="ignore")
    figure_downloads(line, lines_png(range(len(cascade.depth_labels)), corr, None, "Randomisation cascade",
                                     "blocks randomised", "Spearman rho"), "randomisation", "ev_dl_corr_fig")
    flagged = [label(m) for m, f in cascade.flagged.items() if f]
    if flagged:
        st.warning(f"Still similar (rho > {cascade.threshold}) after randomisation: {', '.join(flagged)}.",
                   icon=":material/warning:")
    else:
        st.success(f"Every map changed (rho <= {cascade.threshold} at the deepest block).")
    st.caption("Spearman's rho of |map| against the trained model's |map|. A gap: the map became flat (all zero).")


def convergence_tab(shared, x, context, target) -> None:
    steps = st.multiselect("Step counts", IG_STEPS, default=IG_STEPS, key="ev_ig_steps")
    key = ("convergence", context, target, tuple(sorted(steps)))
    if st.button("Run IG at these step counts", key="ev_run_ig") and steps:
        st.session_state.setdefault("ev_requested", set()).add(key)
    if key not in st.session_state.get("ev_requested", set()):
        st.info("Integrated Gradients' attributions should add up to the score difference; the gap (delta) "
                "shrinks as the steps grow.")
        return
    bar = st.progress(0.0, text="Integrated Gradients…")
    result = results.ig_convergence(shared, x, context, target, sorted(steps),
                                    lambda done, total: bar.progress(done / total, text=f"IG: {done}/{total} step counts"))
    bar.empty()
    fig = curves_figure(result.steps, {"|delta| / |f(x) - f(baseline)|": result.relative}, title="IG convergence",
                        x_label="steps (Gauss-Legendre)", y_label="relative completeness gap")
    fig.update_xaxes(type="log")
    st.plotly_chart(fig, key="ev_ig")
    table = pd.DataFrame({"steps": result.steps, "delta": result.delta, "relative": result.relative})
    st.dataframe(table, hide_index=True, key="ev_ig_table")
    st.download_button("Convergence as CSV", table.to_csv(index=False), "ig_convergence.csv", "text/csv",
                       key="ev_dl_ig", on_click="ignore")


def run() -> None:
    st.title("Evaluate")
    st.caption("Can these maps be trusted? Deletion/insertion against a random floor, the model-randomisation "
               "sanity check, agreement between methods, and Integrated Gradients' convergence.")
    chosen = None
    with panel("The input"):
        chosen = choose()
    if chosen is None:
        return
    shared, rgb, x, context, target, methods, options = chosen
    if not methods:
        st.info("Pick at least one method.")
        return
    heats = None
    with panel("The maps"), st.spinner("Computing the maps…"):
        heats = results.maps(shared, x, context, methods, target)
    if heats is None:
        return
    tabs = st.tabs(["Deletion / insertion", "Randomisation", "Agreement", "IG convergence"])
    with tabs[0], panel("Deletion / insertion"):
        faithfulness_tab(shared, x, context, heats, target, options)
    with tabs[1], panel("Randomisation check"):
        cascade_tab(shared, rgb, x, context, methods, target)
    with tabs[2], panel("Agreement"):
        agreement_tab(heats)
    with tabs[3], panel("IG convergence"):
        convergence_tab(shared, x, context, target)


if __name__ == "__main__":
    from pages import serve_from_entry

    serve_from_entry()
