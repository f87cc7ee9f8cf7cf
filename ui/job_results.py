"""A batch job's output on the Gallery page, and one of its rows opened on the Images page.

``job_section()`` (Gallery) asks for a job's output directory (user input, checked by
:func:`jobs.output.open_job`), shows its rows sorted and filtered by a score, the method
disagreement, and prediction vs label, draws the chosen row's stored map over its photo, and
opens that row on the Images page: the job's settings go into ``st.session_state`` under the
Images page's widget keys (``img_*``) and the photo under :data:`OPENED`, which
:func:`job_input` (Images page) reads. The photo is read from the path the job listed only if
its bytes still hash to the job's sha256. No Ray here: only :mod:`jobs.output`.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import streamlit as st

import models
from explainers.errors import ExplainerError
from jobs.output import Job, JobError, input_hw, open_job
from ui import widgets

if TYPE_CHECKING:
    from ui.image_inputs import ImageInput

OPENED = "img_job_image"
"""Session key: the job row opened on the Images page (model, photo bytes and its cache key)."""
SORTS = {
    "disagreement": ("Disagreement", False, "Method disagreement (high first)"),
    "confidence_low": ("Confidence", True, "Confidence (low first)"),
    "confidence_high": ("Confidence", False, "Confidence (high first)"),
    "deletion_auc": ("Deletion AUC", False, "Deletion AUC (high first: least faithful)"),
    "insertion_auc": ("Insertion AUC", True, "Insertion AUC (low first: least faithful)"),
    "name": ("Image", True, "Name"),
}
FILTERS = {"none": "No filter", "Confidence": "Confidence", "Disagreement": "Disagreement",
           "Deletion AUC": "Deletion AUC", "Insertion AUC": "Insertion AUC"}
VERDICTS = {"all": "All", "wrong": "Prediction differs from the label", "right": "Prediction equals the label"}


@st.cache_data(max_entries=4, show_spinner="Reading the job…")
def _read(root: str, signature: tuple) -> Job:
    return open_job(root)


def read_job(text: str) -> Job:
    """The job in the directory ``text`` (cached until its files change); JobError if it is not one."""
    root = _checked_root(text)
    return _read(str(root), _signature(root))


def _checked_root(text: str) -> Path:
    """Resolve and check the directory (the cheap part of :func:`jobs.output.open_job`, run first)."""
    if not text.strip() or "\x00" in text:
        raise JobError("Give the job's output directory.")
    try:
        root = Path(text.strip()).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        raise JobError(f"{text.strip()} does not exist.") from None
    if not root.is_dir() or not (root / "manifest.json").is_file():
        raise JobError(f"{root} is not a job's output directory (no manifest.json in it).")
    return root


def _signature(root: Path) -> tuple:
    files = [root / "manifest.json", *sorted((root / "shards").glob("part-*.parquet"))]
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files if p.is_file())


def table(job: Job, method: str) -> pd.DataFrame:
    """One row per (image, target) for ``method``, with the columns people sort and filter by."""
    rows = job.rows[job.rows["method"] == method]
    frame = pd.DataFrame({
        "Image": rows["name"], "Target": rows["target_name"], "Rank": rows["target_rank"],
        "Predicted": rows["predicted_name"], "Label": rows["label_name"], "Confidence": rows["confidence"],
        "Target probability": rows["target_probability"], "Disagreement": rows["disagreement"],
        "Deletion AUC": rows["deletion_auc"], "Insertion AUC": rows["insertion_auc"],
        "Status": rows["status"].where(rows["error"].isna(), rows["status"] + ": " + rows["error"].fillna("")),
    })
    frame["Correct"] = np.where(rows["label"].isna(), None, rows["label"] == rows["predicted"])
    return frame.astype({"Correct": object})


def select(frame: pd.DataFrame, verdict: str = "all", column: str = "none",
           low: float | None = None, high: float | None = None) -> pd.DataFrame:
    """Rows kept by the prediction-vs-label choice and the score range (NaN scores fail a range)."""
    keep = pd.Series(True, index=frame.index)
    if verdict != "all":
        keep &= frame["Correct"].map(lambda c: c is not None and bool(c) == (verdict == "right"))
    if column != "none" and low is not None and high is not None:
        keep &= frame[column].between(low, high)
    return frame[keep]


def order(frame: pd.DataFrame, sort: str) -> pd.DataFrame:
    column, ascending, _ = SORTS[sort]
    return frame.sort_values(column, ascending=ascending, na_position="last", kind="stable")


def images_page_state(job: Job, row: pd.Series, data: bytes) -> dict[str, Any]:
    """What the Images page needs to show ``row`` with the job's settings: {session key: value}."""
    manifest = job.manifest
    model = manifest["model"]
    key = f"upload:{row['sha256']}"
    context = (model.get("resolved_name", model["name"]), model.get("description", ""), key)
    state: dict[str, Any] = {
        OPENED: {"model": model["name"], "key": key, "data": data, "name": str(row["name"]), "job": str(job.root)},
        "img_targets": [int(row["target"])], "img_targets_for": context,
        "img_methods": [m for m in job.methods if m in _page_methods()],
        "img_layer": manifest.get("layer"),
    }
    options = manifest.get("options", {})
    widgets = {"seed": ("img_seed", int), "samples": ("img_sg_samples", lambda v: int(min(max(v, 4), 100))),
               "noise_level": ("img_sg_noise", lambda v: float(min(max(v, 0.0), 0.5))),
               "steps": ("img_ig_steps", lambda v: int(min(max(v, 8), 256))),
               "tolerance": ("img_ig_adaptive", lambda v: bool(v > 0))}
    for name, (widget, convert) in widgets.items():
        if isinstance(options.get(name), (int, float)) and not isinstance(options.get(name), bool):
            state[widget] = convert(options[name])
    if options.get("baseline") in ("zero", "black", "blur", "uniform"):
        state["img_ig_baseline"] = options["baseline"]
    if options.get("precision") == "bfloat16":
        state["img_fast"] = True
    return {k: v for k, v in state.items() if v is not None}


def _page_methods() -> list[str]:
    """The method names the Images page offers (read from the UI's own list, wherever it lives)."""
    try:
        from ui.methods import image_methods

        return list(image_methods())
    except ImportError:
        from ui import image_results

        return list(getattr(image_results, "VARIANTS", {}))


def _model_view(job: Job, image) -> np.ndarray:
    """The photo as the job's model saw it: a Hugging Face directory's own image processor (to its
    (height, width), square or not), else the models' evaluation crop at the job's input size."""
    model = job.manifest["model"]
    if model.get("checkpoint") is None and Path(str(model["name"])).expanduser().is_dir():
        from ui.resources import image_model_from_directory

        return image_model_from_directory(str(model["name"])).model.resize(image)
    height, width = input_hw(model)
    if height != width:
        raise JobError(f"The job's model takes {height}x{width} images and is not a directory to read its resizing "
                       "from.")
    return models.ImageModel.resize(SimpleNamespace(input_size=height), image)


def _photo(job: Job, row: pd.Series) -> bytes:
    """The row's photo from the path the job listed, only if it is still the file that was explained."""
    import hashlib

    data = job.image_bytes(row)
    if hashlib.sha256(data).hexdigest() != row["sha256"]:
        raise JobError(f"{row['name']} changed since the job ran (its bytes no longer match): not shown.")
    return data


def _open_on_images_page(state: dict[str, Any]) -> None:
    for key, value in state.items():
        widgets.write(key, value)
    from streamlit.errors import StreamlitAPIException

    from pages import images

    try:
        st.switch_page(st.Page(images.run, title="Images", url_path="images"))
    except StreamlitAPIException:  # not inside the dashboard's navigation (e.g. a page run alone)
        st.info("Settings stored: open the **Images** page to see this row there.")


def show_row(job: Job, row: pd.Series, opacity: float) -> None:
    """The chosen row's stored map over its photo, and the button that opens it on the Images page."""
    from figures.image import overlay_figure

    heat = job.map_of(row["shard"], row["index"], row["target"], row["method"])
    try:
        data = _photo(job, row)
        rgb = _model_view(job, models.open_image(data))
    except ExplainerError as err:
        st.caption(f"Photo not shown: {err}")
        data, rgb = None, np.full((*heat.shape, 3), 255, np.uint8)
    title = f"{row['name']}: {row['method']} for {row['target_name']}"
    st.plotly_chart(overlay_figure(rgb, heat, opacity=opacity, title=title), key="gal_job_overlay")
    bundled = job.manifest["model"].get("checkpoint") is None and job.manifest["model"]["name"] in {
        e.name for e in models.image_models() if e.offline}
    if data is None or not bundled:
        st.caption("Opening on the Images page needs the photo and a bundled model (upload your checkpoint there).")
        return
    if st.button("Open on the Images page", key="gal_job_open", type="primary"):
        _open_on_images_page(images_page_state(job, row, data))


def show_job(job: Job) -> None:
    manifest = job.manifest
    summary = manifest.get("summary", {})
    st.caption(f"Model {manifest['model'].get('resolved_name', manifest['model']['name'])} · methods "
               f"{', '.join(job.methods)} · layer `{manifest.get('layer')}` · {manifest.get('images', '?')} images, "
               f"{len(job.failures)} unreadable · status {manifest.get('status', '?')}"
               + (f" · {summary['images_per_second']:.2f} images/s" if "images_per_second" in summary else ""))
    for problem in job.problems:
        st.warning(problem)
    if len(job.failures):
        with st.expander(f"{len(job.failures)} image(s) could not be read"):
            st.dataframe(job.failures.rename(columns={"name": "Image", "error": "Reason"}), hide_index=True,
                         key="gal_job_failures")
    if not job.methods or not (job.rows["method"].notna()).any():
        st.info("No maps in this job yet (is it still running?).")
        return
    left, middle, right = st.columns(3)
    method = left.selectbox("Method", job.methods, key="gal_job_method")
    sorts = [s for s in SORTS if job.has_scores or "auc" not in s]
    sort = middle.selectbox("Sort by", sorts, format_func=lambda s: SORTS[s][2], key="gal_job_sort")
    verdicts = list(VERDICTS) if job.has_labels else ["all"]
    verdict = right.selectbox("Prediction vs label", verdicts, format_func=VERDICTS.get, key="gal_job_verdict",
                              disabled=not job.has_labels)
    frame = table(job, method)
    columns = [c for c in FILTERS if c == "none" or frame[c].notna().any()]
    column = st.selectbox("Filter by a score", columns, format_func=FILTERS.get, key="gal_job_filter")
    low = high = None
    if column != "none":
        values = frame[column].dropna()
        lo, hi = float(values.min()), float(values.max())
        if hi > lo:
            low, high = st.slider(f"{FILTERS[column]} between", lo, hi, (lo, hi), key=f"gal_job_range_{column}")
    shown = order(select(frame, verdict, column, low, high), sort)
    st.caption(f"{len(shown)} of {len(frame)} rows")
    picked = st.dataframe(
        shown, hide_index=True, key="gal_job_table", on_select="rerun", selection_mode="single-row",
        column_config={"Confidence": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1),
                       "Disagreement": st.column_config.NumberColumn(
                           format="%.2f", help="1 - mean Spearman rank correlation between the job's methods")})
    chosen = list(getattr(getattr(picked, "selection", None), "rows", []) or [])
    if not len(shown):
        return
    position = chosen[0] if chosen and chosen[0] < len(shown) else 0
    st.caption("Select a row in the table to see its map" + (" (showing the first)." if not chosen else "."))
    show_row(job, job.rows.loc[shown.index[position]], st.session_state.get("gal_opacity", 0.55))


def job_section() -> bool:
    """The Gallery's view of a batch job; True when it is on (the page shows nothing else then)."""
    if not st.toggle("Open a batch job's output (python -m jobs)", key="gal_job_on"):
        return False
    text = st.text_input("Job output directory (on the server)", key="gal_job_dir",
                         placeholder="/path/to/output, as given to python -m jobs --out")
    if not text.strip():
        st.info("Give the output directory of a `python -m jobs` run (see docs/jobs.md).")
        return True
    try:
        job = read_job(text)
    except JobError as err:
        st.error(str(err), icon=":material/error:")
        return True
    show_job(job)
    return True


def job_input() -> ImageInput | None:
    """The Images page's input (:class:`ui.image_inputs.ImageInput`) when a job row was opened from the Gallery;
    None otherwise."""
    opened = st.session_state.get(OPENED)
    if not opened:
        return None
    from ui.image_inputs import ImageInput
    from ui.image_results import cached_predictions
    from ui.resources import image_model

    st.info(f"From the batch job in `{opened['job']}`: **{opened['name']}**, with the job's model, methods, "
            "layer, target and options.", icon=":material/photo_library:")
    if st.button("Back to samples and uploads", key="img_job_close"):
        st.session_state.pop(OPENED, None)
        st.rerun()
    shared = image_model(opened["model"])
    with st.sidebar:
        st.subheader("Model")
        st.caption(f"{shared.model.name} (the job's model)")
    rgb = shared.model.resize(models.open_image(opened["data"]))
    x = shared.model.to_tensor(rgb)
    context = (shared.model.name, shared.model.description, opened["key"])
    return ImageInput(shared, opened["key"], rgb, x, context, cached_predictions(shared, x, context))
