"""Evaluate page: can these maps be trusted? Deletion/insertion and ROAD against random maps and
controls, the model-randomisation sanity check, agreement between methods, IG convergence.

Nothing is computed until asked: the Compute button starts a background job for what is not in
the session's cache yet; its progress, with counts, stays at the top of the page while the tabs
keep working. Layout only: the computation lives in ``ui.evaluation_results``."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st

import evaluation
import explainers
import models
from evaluation.controls import CENTRE, SOBEL
from figures.evaluation import agreement_heatmap, correlation_cascade, curves_figure, log_steps_axis
from figures.evaluation_extra import lines_png
from figures.export import grid_png, to_html
from figures.image import map_grid
from ui import evaluation_results as results
from ui.guard import panel
from ui.image_inputs import choose_model
from ui.methods import default_methods, image_methods, label, not_offered

FILLS = {"zero": "Grey / mean colour (zero tensor)", "blur": "Blurred photo"}
WHAT = {"maps": "maps", "faithfulness": "deletion / insertion scores", "road": "ROAD scores",
        "sanity": "sanity checks"}
IG_STEPS = [8, 16, 32, 64, 128]
MAX_CASCADE_COLUMNS = 6
PERCENTILES = (20, 40, 60, 80)
POLL_SECONDS = 1.0


def name_of(name: str) -> str:
    """A method's label, or a control's name without its prefix."""
    return name.removeprefix("control: ").capitalize() + " (control)" if name in results.CONTROLS else label(name)


def methods_for_page(net) -> list[str]:
    """The registry's image methods that apply to ``net``, without its control records (the page draws its own
    controls)."""
    return [m for m in image_methods(net) if explainers.method(m).family != "control"]


def choose() -> tuple:
    """The input, class, methods, metrics and settings: (shared, rgb, x, context, target, methods, metrics, settings)."""
    shared = choose_model("ev")
    model = shared.model
    left, right = st.columns(2)
    sample = left.selectbox("Sample photo", models.sample_names(), key="ev_sample")
    rgb = model.resize(models.load_sample(sample))
    x = model.to_tensor(rgb)
    context = (model.name, f"sample:{sample}")
    probs = results.predictions(shared, x, context)
    top = [int(i) for i in np.argsort(probs)[::-1][:5]]
    target = right.selectbox("Class to explain", top, format_func=lambda i: f"{model.labels[i]} ({probs[i]:.1%})",
                             key="ev_target")
    methods = st.multiselect("Methods", methods_for_page(model.net), default=default_methods(), format_func=label,
                             key="ev_methods")
    if note := not_offered(model.net):
        st.caption(note)
    metrics = st.pills("Measure", list(results.METRICS), default=["faithfulness", "sanity"], selection_mode="multi",
                       format_func=results.METRICS.get, key="ev_metrics") or []
    with st.sidebar.expander("Deletion / insertion / ROAD", expanded=True):
        settings = {
            "steps": st.slider("Deletion / insertion steps (k)", 5, 50, 10, key="ev_steps",
                               help="Each map costs 2 (k - 1) images; each floor 20 maps' worth."),
            "replacement": st.radio("Deleted pixels become", list(FILLS), format_func=FILLS.get, key="ev_fill",
                                    help="Insertion always starts from a blurred copy (RISE)."),
            "random_maps": st.slider("Random maps per floor", 5, 50, 20, key="ev_random_maps",
                                     help="A method beats random only above the 95th percentile of these."),
            "percentiles": PERCENTILES,
            "seed": 0,
        }
    return shared, rgb, x, context, target, methods, metrics, settings


def status(request: tuple) -> None:
    """The job's progress with counts (polled while it runs), or what is left to compute."""
    job = results.current_job()
    if job is not None and st.session_state.get("ev_updates_seen", (None, 0)) != (id(job), job.updates):
        fresh = st.session_state.get("ev_updates_seen", (None, 0))[0] == id(job)
        st.session_state["ev_updates_seen"] = (id(job), job.updates)
        if fresh and job.updates:
            st.rerun()  # results have just arrived: draw them while the rest runs
    if job is not None and job.running:
        total = max(job.total, 1)
        stages = len(job.stages)
        st.progress(min(job.done / total, 1.0),
                    text=f"Computing step {min(job.stages_done + 1, stages)} of {stages}: {job.stage} "
                         f"{job.done}/{job.total} · {time_since(job)} — the tabs below keep working.")
        return
    if job is not None and job.errors and job.request == request:
        for error in job.errors:
            st.error(error, icon=":material/error:")
    if job is not None and not job.running and st.session_state.get("ev_job_seen") is not job:
        st.session_state["ev_job_seen"] = job
        st.rerun()  # the job has just finished: draw its results everywhere on the page


def time_since(job: results.Job) -> str:
    return f"{time.perf_counter() - job.started:.0f} s"


def describe(todo: dict) -> str:
    return ", ".join(f"{len(v)} {WHAT[k]}" for k, v in todo.items())


def compute_button(shared, x, context, target, methods, metrics, settings, todo: dict) -> None:
    job = results.current_job()
    busy = job is not None and job.running
    if not todo:
        st.caption("Everything asked for is computed (cached for this session).")
        return
    if st.button(f"Compute: {describe(todo)}", type="primary", disabled=busy, key="ev_compute"):
        results.start(shared, x, context, target, methods, metrics, settings)


WAITING = "waiting for the random maps"
"""A verdict cell while the random floor it compares against is still being computed."""


def verdict_cell(verdict: evaluation.Verdict | None) -> str:
    return WAITING if verdict is None else verdict.outcome or "no verdict"


def scores_tab(context, target, methods, settings) -> None:
    names = [*methods, *results.CONTROLS]
    faith = results.results(context, target, names, "faithfulness", settings)
    road = results.results(context, target, names, "road", settings)
    if not faith and not road:
        st.info("Ask for Deletion / insertion or ROAD above and press Compute.")
        return
    rows = []
    for m in names:
        f, r = faith.get(m), road.get(m)
        if f is None and r is None:
            continue
        rows.append({
            "map": name_of(m),
            "deletion AUC": f.deletion_auc if f else None,
            "deletion": verdict_cell(f.verdicts.get("deletion")) if f else "",
            "insertion AUC": f.insertion_auc if f else None,
            "insertion": verdict_cell(f.verdicts.get("insertion")) if f else "",
            "ROAD": r.combined if r else None, "ROAD verdict": verdict_cell(r.verdict) if r else "",
        })
    rows += floor_table(faith, road)
    table = pd.DataFrame(rows)
    if not road:  # a metric not asked for gets no columns (not a column of "None")
        table = table.drop(columns=["ROAD", "ROAD verdict"])
    if not faith:
        table = table.drop(columns=["deletion AUC", "deletion", "insertion AUC", "insertion"])
    st.dataframe(table, hide_index=True, key="ev_score_table", column_config={
        c: st.column_config.NumberColumn(format="%.3f") for c in ("deletion AUC", "insertion AUC", "ROAD")})
    st.download_button("Scores as CSV", table.to_csv(index=False), "scores.csv", "text/csv", key="ev_dl_scores",
                       on_click="ignore")
    first = next(iter(faith.values()), None)
    if first is not None:
        st.caption(f"Deletion: pixels become {first.deletion_substrate}; insertion starts from "
                   f"{first.insertion_substrate}; score: softmax probability of the class; lower deletion AUC and "
                   "higher insertion AUC are better. ROAD: noisy linear imputation at percentiles "
                   f"{', '.join(map(str, settings['percentiles']))}, (LeRF - MoRF) / 2, higher is better. A map beats "
                   f"random only when it is better than 95% of {settings['random_maps']} random maps drawn at its "
                   "own resolution (a CAM's layer grid, or pixels).")
    with st.expander("What each verdict means", expanded=False):
        for m in names:
            verdicts = [*(faith[m].verdicts.values() if m in faith else ()), *((road[m].verdict,) if m in road else ())]
            if verdicts:
                st.markdown(f"**{name_of(m)}**")
                for v in verdicts:
                    st.markdown(f"- {results.verdict_badge(v)} {v.reason}")
    if faith:
        curves_section(faith, methods)


def floor_table(faith: dict, road: dict) -> list[dict]:
    """One row per random floor: the median and the 5th-95th percentile range of its maps."""
    rows = []
    floors = {s.floor.grid: s.floor for s in faith.values() if s.floor is not None}
    road_floors = {s.floor.grid: s.floor for s in road.values()}
    for grid in dict.fromkeys([*floors, *road_floors]):
        where = "pixels" if grid is None else f"{grid[0]}x{grid[1]} grid"
        f, r = floors.get(grid), road_floors.get(grid)
        spread = lambda v: f"5-95%: {np.percentile(v, 5):.3f}-{np.percentile(v, 95):.3f}"  # noqa: E731
        rows.append({"map": f"Random maps, median ({where})",
                     "deletion AUC": float(np.median(f.deletion_auc)) if f else None,
                     "deletion": spread(f.deletion_auc) if f else "",
                     "insertion AUC": float(np.median(f.insertion_auc)) if f else None,
                     "insertion": spread(f.insertion_auc) if f else "",
                     "ROAD": float(np.median(r.combined)) if r else None, "ROAD verdict": spread(r.combined) if r else ""})
    return rows


def curves_section(faith: dict, methods: list[str]) -> None:
    shown = {m: s for m, s in faith.items() if m in methods or m in (SOBEL, CENTRE)}
    first = next(iter(shown.values()))
    for kind, x_label in (("deletion", "fraction of pixels deleted"), ("insertion", "fraction of pixels inserted")):
        curves = {name_of(m): getattr(s, kind) for m, s in shown.items()}
        aucs = {name_of(m): getattr(s, f"{kind}_auc") for m, s in shown.items()}
        randoms = {}
        for s in shown.values():
            if s.floor is None:  # still being computed
                continue
            where = "pixels" if s.floor.grid is None else f"{s.floor.grid[0]}x{s.floor.grid[1]}"
            name = f"random, median ({where})"
            randoms[name] = np.median(getattr(s.floor, kind), axis=0)
            aucs[name] = float(np.median(getattr(s.floor, f"{kind}_auc")))
        title = f"{kind.title()} curves"
        fig = curves_figure(first.fractions, curves, randoms, aucs, title=title, x_label=x_label)
        st.plotly_chart(fig, key=f"ev_{kind}")
        figure_downloads(fig, lines_png(first.fractions, curves, randoms, title, x_label, auc=aucs), kind,
                         f"ev_dl_{kind}")


def figure_downloads(fig, png: bytes | None, name: str, key: str) -> None:
    left, right = st.columns(2)
    left.download_button("Figure as HTML", lambda: to_html(fig), f"{name}.html", "text/html", key=f"{key}_html",
                         on_click="ignore")
    if png is not None:
        right.download_button("Figure as PNG", png, f"{name}.png", "image/png", key=f"{key}_png", on_click="ignore")


def sanity_tab(shared, rgb, x, context, methods, target, settings) -> None:
    found = results.results(context, target, [*methods, SOBEL], "sanity", settings)
    if found:
        table = pd.DataFrame([{"map": name_of(m), "rho at full randomisation": s.rho,
                               "noise floor (two random models)": s.floor, "verdict": verdict_cell(s.verdict)}
                              for m, s in found.items()])
        st.dataframe(table, hide_index=True, key="ev_sanity_table", column_config={
            c: st.column_config.NumberColumn(format="%.2f") for c in ("rho at full randomisation",
                                                                      "noise floor (two random models)")})
        for m, s in found.items():
            st.markdown(f"{results.verdict_badge(s.verdict)} **{name_of(m)}**: {s.verdict.reason}")
        st.caption("rho: mean |Spearman| between the trained model's |map| and the maps of two copies with every "
                   "block re-initialised; the noise floor is the same number between the two copies. A method "
                   "fails when its map still tracks the trained model's (rho above 0.5, or above the floor + 0.2).")
    else:
        st.info("Ask for the Sanity check above and press Compute.")
    st.divider()
    cascade_fragment(shared, rgb, x, context, methods, target)


@st.fragment
def cascade_fragment(shared, rgb, x, context, methods, target) -> None:
    """The cascade figure: randomise block by block, down to a chosen depth (reruns only this part)."""
    labels = results.group_labels(shared, x, context)
    depth = 1 if len(labels) == 1 else st.slider(  # a one-block model (e.g. a small ViT) has nothing to choose
        "Cascade: randomise from the top down to block", 1, len(labels), min(4, len(labels)), format="%d", key="ev_depth")
    st.caption(f"Randomised down to: {labels[depth - 1]} ({depth} of {len(labels)} blocks).")
    key = ("cascade", context, tuple(methods), target, depth)
    if st.button("Run the cascade", key="ev_run_cascade"):
        st.session_state.setdefault("ev_requested", set()).add(key)
    if key not in st.session_state.get("ev_requested", set()):
        st.info("Re-initialises the model's blocks one by one from the top, on a copy, and recomputes every map.")
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
    st.caption("Spearman's rho of |map| against the trained model's |map|. A gap: the map became flat (all zero).")


def agreement_tab(context, target, methods) -> None:
    entries = {m: e for m, e in results.heats(results.store(), context, target, methods).items() if e.heat is not None}
    if len(entries) < 2:
        st.info("Compute the maps of at least two methods (press Compute above) to compare them.")
        return
    kept = {m: e for m, e in entries.items() if not explainers.method(m).evidence_against}
    if len(kept) < 2:
        st.info("Agreement leaves out a method's own negative map: pick at least two other methods.")
        return
    found = evaluation.agreement({label(m): e.heat for m, e in kept.items()},
                                 signed={label(m) for m in kept if explainers.method(m).signed})
    left, right = st.columns(2)
    rho = agreement_heatmap(found.spearman, found.names, title="Rank correlation (Spearman)")
    iou = agreement_heatmap(found.top_k_iou, found.names, title="Top-10% pixels overlap (IoU)", metric="IoU", zmin=0.0)
    left.plotly_chart(rho, key="ev_agree_rho")
    right.plotly_chart(iou, key="ev_agree_iou")
    st.caption("Magnitudes |map| are compared, or signed values where both methods are signed; a method's own "
               "negative map (evidence against the class) is left out.")
    csv = pd.concat({"spearman": pd.DataFrame(found.spearman, found.names, found.names),
                     "top10_iou": pd.DataFrame(found.top_k_iou, found.names, found.names)}).to_csv()
    st.download_button("Agreement matrices as CSV", csv, "agreement.csv", "text/csv", key="ev_dl_agree",
                       on_click="ignore")
    figure_downloads(rho, None, "agreement", "ev_dl_agree_fig")


@st.fragment
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
    log_steps_axis(fig, result.steps)
    st.plotly_chart(fig, key="ev_ig")
    table = pd.DataFrame({"steps": result.steps, "delta": result.delta, "relative": result.relative})
    st.dataframe(table, hide_index=True, key="ev_ig_table")
    st.download_button("Convergence as CSV", table.to_csv(index=False), "ig_convergence.csv", "text/csv",
                       key="ev_dl_ig", on_click="ignore")


def run() -> None:
    st.title("Evaluate")
    st.caption("Can these maps be trusted? Deletion/insertion and ROAD against random maps and controls, the "
               "model-randomisation sanity check, agreement between methods, and Integrated Gradients' convergence. "
               "Nothing is computed until you press Compute.")
    top = st.container()
    chosen = None
    with panel("The input"):
        chosen = choose()
    if chosen is None:
        return
    shared, rgb, x, context, target, methods, metrics, settings = chosen
    if not methods:
        st.info("Pick at least one method.")
        return
    todo = results.missing(results.store(), context, target, methods, metrics, settings)
    request = (context, target, tuple(methods), tuple(metrics))
    with top:
        progress = st.container()
        compute_button(shared, x, context, target, methods, metrics, settings, todo)
    job = results.current_job()  # drawn after the button, which may just have started it
    with progress, panel("Progress"):
        st.fragment(run_every=POLL_SECONDS if job is not None and job.running else None)(status)(request)
    failed = {m: e.error for m, e in results.heats(results.store(), context, target, methods).items() if e.error}
    for m, error in failed.items():
        st.warning(f"{label(m)}: {error}", icon=":material/warning:")
    tabs = st.tabs(["Scores", "Sanity check", "Agreement", "IG convergence"])
    with tabs[0], panel("Scores"):
        scores_tab(context, target, methods, settings)
    with tabs[1], panel("Sanity check"):
        sanity_tab(shared, rgb, x, context, methods, target, settings)
    with tabs[2], panel("Agreement"):
        agreement_tab(context, target, methods)
    with tabs[3], panel("IG convergence"):
        convergence_tab(shared, x, context, target)


if __name__ == "__main__":
    from pages import serve_from_entry

    serve_from_entry()
