"""Text page: type a sentence, see which tokens drive the prediction, method by method."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import streamlit as st

import explainers
from explainers.text import PreparedText, text_methods
from figures.export import records_csv, to_html, token_rows_png
from figures.image import topk_bar
from figures.text import TokenRow, row_scales, token_heatmap_rows
from ui.evaluation_results import score_caption
from ui.guard import panel
from ui.methods import label, signed
from ui.report_button import export_report_button, text_report_section
from ui.resources import Shared
from ui.text_inputs import LAST_TEXT, choose_text_model, prepare_checked
from ui.text_results import (
    TextResult,
    explain,
    ig_progress,
    prepared,
    probabilities,
    score_results,
    text_runs,
)

EXAMPLES = {
    "Positive": "A warm, funny and beautifully acted film that I would happily watch again.",
    "Negative": "The plot is a mess, the jokes fall flat and the two hours feel like four.",
    "Mixed": "The actors are wonderful, but the script is lazy and the ending is a letdown.",
    "Negated": "This is not a good movie, and it is certainly not funny.",
    "Long review": (
        "I went in expecting little. The trailer promised another noisy action movie, and for the first "
        "twenty minutes that is what it delivers: chases, explosions, a villain who explains his plan. "
        "Then something changes. The director slows down, lets scenes breathe, and gives the lead actress "
        "room to build a character with real doubts. The middle act is genuinely moving, and the score "
        "never tells you what to feel. The ending is rushed and one subplot goes nowhere, but overall this "
        "is a thoughtful, well made film that deserves a bigger audience than it will probably get."
    ),
    "Japanese": "この映画は本当に素晴らしかった。",
    "Japanese: I am an unlucky person": "私は不運な人間です。",
    "Chinese: a good hotel": "这家酒店的服务非常好，房间也很干净。",
    "Chinese: a terrible hotel": "这家酒店太糟糕了，房间又脏又吵。",
}
IG_BASELINES = {"pad": "[PAD] tokens", "mask": "[MASK] tokens", "zero": "Zero embeddings"}


OWN_TEXT = "Your own text"
"""The example selector's entry for a text that is none of the examples."""


def _use_example() -> None:
    """Put the chosen example in the box; "Your own text" brings back the last text typed, if any."""
    chosen = st.session_state["txt_example"]
    if chosen != OWN_TEXT:
        st.session_state["txt_text"] = EXAMPLES[chosen]
    elif "txt_own_text" in st.session_state:
        st.session_state["txt_text"] = st.session_state["txt_own_text"]


def _follow_text() -> None:
    """Make the selector name the text actually in the box: the example it equals, else "Your own
    text" (an edited example included), which then keeps that text for coming back to it."""
    text = st.session_state["txt_text"]
    name = next((name for name, example in EXAMPLES.items() if example == text), OWN_TEXT)
    st.session_state["txt_example"] = name
    if name == OWN_TEXT:
        st.session_state["txt_own_text"] = text


def choose_text() -> str:
    st.session_state.setdefault("txt_text", EXAMPLES["Positive"])
    _follow_text()
    st.selectbox("Example sentences", [*EXAMPLES, OWN_TEXT], key="txt_example", on_change=_use_example)
    text = st.text_area("Text to explain", key="txt_text", height=100)
    st.session_state[LAST_TEXT] = text  # a plain key: widget keys are dropped when another page runs
    return text


def rows_for(results: list[TextResult], words: bool) -> list[TokenRow]:
    """One heatmap row per method: subword tokens (special ones marked) or merged words; IG's
    convergence delta as the row's note."""
    rows = []
    for result in results:
        a = result.attribution
        note = (f"Convergence delta {a.extras['delta']:+.4f} (sum of scores minus the score difference "
                "from the baseline)") if "delta" in a.extras else ""
        if words:
            rows.append(TokenRow(label(result.method), a.words, a.word_scores, note=note))  # hover: the word
        else:
            words_of = [a.words[i] if i >= 0 else "(special)" for i in a.token_word]
            rows.append(TokenRow(label(result.method), a.tokens, a.scores, words=words_of, special=a.special,
                                 note=note))
    return rows


def scores_table(results: list[TextResult]) -> list[dict]:
    """Every token's score under every method (for the CSV / JSON downloads)."""
    first = results[0].attribution
    table = []
    for i, token in enumerate(first.tokens):
        row = {"index": i, "token": token, "special": first.special[i],
               "word": first.words[first.token_word[i]] if first.token_word[i] >= 0 else ""}
        row |= {r.method: float(r.attribution.scores[i]) for r in results}
        table.append(row)
    return table


def facts(result: TextResult) -> str:
    a = result.attribution
    parts = [f"**{label(result.method)}**", f"{result.seconds * 1000:.0f} ms"]
    if a.extras.get("target_independent"):
        parts.append("does not depend on the target class")
    if result.faithfulness is not None:
        parts.append(score_caption(result.faithfulness))
    return " · ".join(parts)


def show_downloads(fig, png, results: list[TextResult], prefix: str) -> None:
    """HTML and PNG of the heatmaps, scores as CSV/JSON: each built on its click (``png``: a zero-argument
    builder), not on every rerun of the display fragment."""
    a, p, b, c = st.columns(4)
    a.download_button("Heatmaps as HTML", lambda: to_html(fig), f"{prefix}.html", "text/html",
                      key=f"{prefix}_dl_html", on_click="ignore")
    p.download_button("Heatmaps as PNG", png, f"{prefix}.png", "image/png", key=f"{prefix}_dl_png", on_click="ignore")
    b.download_button("Scores as CSV", lambda: records_csv(scores_table(results)), f"{prefix}.csv", "text/csv",
                      key=f"{prefix}_dl_csv", on_click="ignore")
    c.download_button("Scores as JSON", lambda: json.dumps(scores_table(results), indent=1), f"{prefix}.json",
                      "application/json", key=f"{prefix}_dl_json", on_click="ignore")


@st.fragment
def token_display(shared: Shared, prep: PreparedText, good: list[TextResult], target: int, methods: list[str],
                  options: dict[str, dict]) -> None:
    """The heatmaps, their scores and downloads, and the two-text comparison, under the display options.

    A fragment: changing words/tokens, the colour scale or the line width reruns only this part, from
    the scores kept in the session (no model pass, the prediction and the inputs above are not redrawn).
    """
    a, b, c = st.columns([1, 1, 2], vertical_alignment="center")
    words = a.toggle("Merge subwords into words", key="txt_words")
    shared_scale = b.checkbox("One colour scale per method family", key="txt_shared_scale",
                              help="Rows of one family (gradients, perturbations, attention, CAM) share a colour "
                                   "scale, since their scores are in the same units; rows of different families "
                                   "keep their own scales, as their numbers cannot be compared.")
    width = c.slider("Characters per line", 40, 160, 90, 10, key="txt_width")
    if good:
        with panel("The token heatmaps"):
            heatmaps(shared, prep, good, target, words, shared_scale, width)
    with st.expander("Compare with a second text", expanded=False):
        compare_texts(shared, target, methods, options, words, width)


def heatmaps(shared: Shared, prep: PreparedText, good: list[TextResult], target: int, words: bool,
             shared_scale: bool, width: int) -> None:
    """One heatmap row per method, the scoring button, each method's facts, the downloads and the report."""
    model, probs = shared.model, probabilities(prep)
    predicted = int(np.argmax(probs))
    rows = rows_for(good, words)
    families = [explainers.method(r.method).family for r in good]
    layout = dict(scale=row_scales(rows, None, shared_scale, [signed(r.method) for r in good], families), width=width)
    fig = token_heatmap_rows(rows, **layout)
    st.plotly_chart(fig, key="txt_heatmaps")
    if shared_scale and len(set(families)) > 1:
        st.caption("Rows of different method families keep their own colour scales (their scores are in different "
                   "units); rows of one family share one.")
    if st.button("Score these maps (deletion / insertion AUC)", key="txt_score",
                 help="Replaces tokens by [PAD] in order of importance and measures the class probability."):
        score_results(shared, prep, good, target)
    for r in good:
        st.caption(facts(r))
    said = "the predicted class" if target == predicted else f"predicted: {model.labels[predicted]}"
    png_title = f"{model.name}: which tokens push toward “{model.labels[target]}” ({said}, {probs[target]:.1%})"
    show_downloads(fig, lambda: token_rows_png(rows, **layout, title=png_title), good, "txt")
    export_report_button(lambda: [text_report_section(model, prep.text, probs, good, [("Token heatmaps", fig)])],
                         title="Text", key="txt_report")


def compare_texts(shared: Shared, target: int, methods: list[str], options: dict[str, dict], words: bool,
                  width: int) -> None:
    """Two short texts explained by one method for the same class, on one colour scale."""
    model = shared.model
    first_text = st.text_input("First text", value="good", key="txt_first")
    other = st.text_input("Second text", value="not good", key="txt_other")
    method = st.selectbox("Method", methods, format_func=label, key="txt_compare_method")
    st.caption(f"Both rows explain the class **{model.labels[target]}** (the target class chosen above), "
               "on one colour scale.")
    with panel("The comparison"):
        with ig_progress() as progress:
            pair = [explain(shared, prepared(shared, t), method, target, options.get(method, {}), progress)
                    for t in (first_text, other)]
        for r in pair:
            if r.error:
                st.error(r.error)
        if all(r.attribution for r in pair):
            said = [probabilities(prepared(shared, t)) for t in (first_text, other)]
            rows = [replace(r, title=f"“{t}”: the model says {model.labels[int(np.argmax(p))]} ({np.max(p):.0%})")
                    for t, r, p in zip((first_text, other), rows_for(pair, words), said)]
            compared = dict(shared=True, signed=signed(method), width=width)
            st.plotly_chart(token_heatmap_rows(rows, **compared), key="txt_compare")
            png_title = f"{model.name}: both texts explained for the class “{model.labels[target]}”"
            st.download_button("Comparison as PNG", lambda rows=rows: token_rows_png(rows, **compared, title=png_title),
                               "comparison.png", "image/png", key="txt_compare_png", on_click="ignore")


def run() -> None:
    st.title("Text")
    st.caption("Which words push a sentiment classifier toward its answer? Each row is one method.")
    shared = choose_text_model("txt")
    if shared is None:
        return
    model = shared.model
    text = choose_text()
    prep = prepare_checked(shared, text)
    if prep is None:
        return
    probs = probabilities(prep)
    predicted = int(np.argmax(probs))
    st.plotly_chart(topk_bar(model.labels, probs, highlight=predicted, title="Prediction"), key="txt_probs")

    names = ["Predicted"] + model.labels
    # The predicted class goes in the label, not in an option's text: a keyed selectbox keeps
    # showing the option text it first drew (verified in the browser test).
    target_name = st.selectbox(f"Target class (predicted: {model.labels[predicted]})", names,
                               format_func=lambda n: "The predicted class" if n == "Predicted" else n, key="txt_target")
    target = predicted if target_name == "Predicted" else model.labels.index(target_name)
    # Token-level gradient methods first (IG leads), then the model-specific ones; per-layer views live on their page.
    available = sorted((m for m in text_methods(model.net) if not explainers.method(m).per_layer),
                       key=lambda m: explainers.method(m).family != "gradient")
    if st.session_state.get("txt_methods_for", model.name) != model.name:  # another model: all of its own methods
        st.session_state["txt_methods"] = available
    st.session_state["txt_methods_for"] = model.name
    st.session_state.setdefault("txt_methods", available)
    methods = st.multiselect("Methods (one row each)", available, format_func=label, key="txt_methods")
    with st.sidebar.expander("Method options"):
        adaptive = st.checkbox("Integrated Gradients: adaptive path (refined until delta <= 1%)", value=True,
                               key="txt_ig_adaptive", help="Untick for a fixed number of Gauss-Legendre steps.")
        steps = st.slider("Integrated Gradients: fixed steps", 8, 200, 50, key="txt_ig_steps", disabled=adaptive)
        baseline = st.selectbox("Integrated Gradients: baseline", list(IG_BASELINES), format_func=IG_BASELINES.get,
                                key="txt_ig_baseline")
    options = {"integrated_gradients": {"steps": steps, "baseline": baseline, "tolerance": 0.01 if adaptive else 0.0}}

    results = []
    with panel("The token heatmaps"):
        with ig_progress() as progress:
            results = [explain(shared, prep, m, target, options.get(m, {}), progress) for m in methods]
        for failed in [r for r in results if r.error]:
            st.error(f"{label(failed.method)}: {failed.error}")
    token_display(shared, prep, [r for r in results if r.attribution is not None], target, methods or available,
                  options)
    st.caption(f"Explainer runs in this session: {text_runs()}. Display changes reuse the computed scores.")


if __name__ == "__main__":
    from pages import serve_from_entry

    serve_from_entry()
