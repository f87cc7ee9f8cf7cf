"""BERT layers page: per-layer Grad-CAM as a layers x tokens heatmap, attention and rollout."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

import explainers
from explainers.text import PreparedText, attention_weights, rollout
from figures.export import layers_tokens_png, records_csv, to_html
from figures.text import attention_heatmap, layers_tokens_heatmap
from ui.guard import panel
from ui.resources import Shared
from ui.text_inputs import LAST_TEXT, choose_text_model, prepare_checked
from ui.text_results import TextResult, explain, probabilities, text_runs

DEFAULT_TEXT = "The actors are wonderful, but the script is lazy and the ending is a letdown."
CLS_SHARE = 0.5
"""Share of the last layer's row on the first token above which the page explains why."""

PER_LAYER = next(m.name for m in explainers.methods("text") if m.per_layer)
"""The layers x tokens method (the registry's per-layer text record)."""


def layer_labels(result: TextResult) -> list[str]:
    """'embeddings', 'layer 1', ... from the layer module names."""
    return ["embeddings" if name.endswith("embeddings") else f"layer {int(name.rsplit('.', 1)[-1]) + 1}"
            for name in result.attribution.layers]


def layer_table(result: TextResult, class_name: str) -> list[dict]:
    """Every (layer, token) score of a per-layer Grad-CAM with its token, for the CSV / JSON downloads."""
    a = result.attribution
    return [{"class": class_name, "layer": label, "index": j, "token": token, "special": bool(a.special[j]),
             "score": float(a.scores[i, j])}
            for i, label in enumerate(layer_labels(result)) for j, token in enumerate(a.tokens)]


def cls_note(result: TextResult) -> None:
    """Explain a last-layer row concentrated on [CLS]: with a pooler head, only [CLS] gets gradient."""
    last = np.abs(result.attribution.scores[-1])
    if last.sum() > 0 and result.attribution.special[0] and last[0] / last.sum() > CLS_SHARE:
        st.info(
            f"The last layer's row sits on {result.attribution.tokens[0]} "
            f"({last[0] / last.sum():.0%} of it). This is expected, not a bug: the classifier reads only the "
            "first token's final vector (through the pooler), so the last layer gets gradient only there. "
            "Earlier layers show where the evidence comes from.",
            icon=":material/info:",
        )


@st.fragment
def layer_maps(shared: Shared, prep: PreparedText, targets: list[int], options: dict[str, bool]) -> None:
    """Per-layer Grad-CAM of each target (the predicted class first), one under the other (a long text
    needs the page's width: the heatmap wraps), with downloads. A fragment: the scale choice reruns only
    this part, from the scores kept in the session."""
    model, probs = shared.model, probabilities(prep)
    normalise = st.radio("Scale", ["row", "global"], key="bl_normalise", horizontal=True,
                         format_func={"row": "Each row to its own peak", "global": "One scale for all"}.get)
    for target in targets:
        with panel(f"Per-layer Grad-CAM for {model.labels[target]}"):
            result = explain(shared, prep, PER_LAYER, target, options)
            if result.error:
                st.error(result.error)
                continue
            kind = "predicted" if target == targets[0] else "other class"
            heatmap = dict(scores=result.attribution.scores, tokens=result.attribution.tokens,
                           layer_labels=layer_labels(result), normalise=normalise, signed=options["signed"],
                           title=f"{model.name}: per-layer Grad-CAM for “{model.labels[target]}” ({kind}, "
                                 f"{probs[target]:.1%})")
            fig = layers_tokens_heatmap(**heatmap)
            st.plotly_chart(fig, key=f"bl_layers_{kind}")
            name, table = f"layers_{model.labels[target]}", layer_table(result, model.labels[target])
            html_col, png_col, csv_col, json_col = st.columns(4)
            html_col.download_button("As HTML", lambda fig=fig: to_html(fig), f"{name}.html",
                                     "text/html", key=f"bl_dl_{kind}", on_click="ignore")
            png_col.download_button("As PNG", lambda heatmap=heatmap: layers_tokens_png(**heatmap),
                                    f"{name}.png", "image/png", key=f"bl_png_{kind}", on_click="ignore")
            csv_col.download_button("As CSV", records_csv(table), f"{name}.csv", "text/csv", key=f"bl_csv_{kind}",
                                    on_click="ignore", help="The scores per layer and token")
            json_col.download_button("As JSON", json.dumps(table, indent=1), f"{name}.json", "application/json",
                                     key=f"bl_json_{kind}", on_click="ignore", help="The scores per layer and token")
            if kind == "predicted":
                cls_note(result)


@st.fragment
def attention(shared: Shared, prep: PreparedText) -> None:
    """One layer's and head's attention beside the rollout; a fragment: the sliders redraw only these."""
    with panel("Attention"):
        store = st.session_state.setdefault("bl_attention", {})
        key = (shared.model.name, prep.text)
        if key not in store:
            with shared.lock:
                found = attention_weights(shared.model.net, prep)
            store[key] = (found.numpy(), rollout(list(found)).numpy())
        weights, roll = store[key]
        layers, heads = weights.shape[:2]
        a, b = st.columns(2)
        layer = a.slider("Layer", 1, layers, layers, key="bl_att_layer")
        head = b.slider("Head", 1, heads, 1, key="bl_att_head")
        left, right = st.columns(2)
        left.plotly_chart(attention_heatmap(weights[layer - 1, head - 1], prep.tokens,
                                            title=f"Layer {layer}, head {head}"), key="bl_attention_map")
        right.plotly_chart(attention_heatmap(roll, prep.tokens, title="Attention rollout (all layers)"),
                           key="bl_rollout")


def run() -> None:
    st.title("BERT layers")
    st.caption("How evidence moves through the encoder: per-layer Grad-CAM (rows = layers, columns = tokens).")
    shared = choose_text_model("bl")
    if shared is None:
        return
    model = shared.model
    st.session_state.setdefault("bl_text", st.session_state.get(LAST_TEXT, DEFAULT_TEXT))
    text = st.text_area("Text to explain", key="bl_text", height=90)
    prep = prepare_checked(shared, text)
    if prep is None:
        return
    probs = probabilities(prep)
    predicted = int(np.argmax(probs))
    others = [i for i in range(len(model.labels)) if i != predicted]
    with st.sidebar.expander("What to compute", expanded=True):
        embeddings = st.checkbox("Include the embeddings as layer 0", key="bl_embeddings")
        signed = st.checkbox("Signed (no ReLU: blue = against the class)", key="bl_signed")
    # The probabilities go in the label, not the options: a keyed selectbox keeps showing the option
    # text of the run that created it, so "negative (0.7%)" would outlive a new text.
    chances = ", ".join(f"{model.labels[i]} {probs[i]:.1%}" for i in others)
    other = st.selectbox(f"Compare with class (now: {chances})", others, format_func=model.labels.__getitem__,
                         key="bl_other") if others else None
    layer_maps(shared, prep, [predicted] + ([other] if other is not None else []),
               {"include_embeddings": embeddings, "signed": signed})
    st.subheader("Attention")
    attention(shared, prep)
    st.caption(f"Explainer runs in this session: {text_runs()}. Display changes reuse the computed scores.")


if __name__ == "__main__":
    from pages import serve_from_entry

    serve_from_entry()
