"""Text-model picker shared by the Text and BERT-layers pages."""

from __future__ import annotations

import streamlit as st

import models
from explainers.text import PreparedText
from ui.guard import panel
from ui.resources import Shared, text_model
from ui.text_results import prepared

LOCAL_DIR = "Local Hugging Face directory…"

LAST_TEXT = "text_last_typed"
"""Session key of the Text page's latest text, which the BERT layers page starts from."""


def choose_text_model(key: str) -> Shared | None:
    """Sidebar: a bundled text model or a local Hugging Face directory; None if none can load."""
    with st.sidebar:
        st.subheader("Text model")
        bundled = [info.name for info in models.text_models()]
        name = st.selectbox("Model", bundled + [LOCAL_DIR], key=f"{key}_model")
        if name == LOCAL_DIR:
            name = st.text_input("Directory (config, weights, tokenizer)", key=f"{key}_model_dir").strip()
            if not name:
                st.info("Type the path of a local Hugging Face model directory.")
                return None
    shared = None
    with panel("The text model"):
        shared = text_model(name)
    return shared


def prepare_checked(shared: Shared, text: str) -> PreparedText | None:
    """The text tokenised with its prediction, or None after showing why not; truncation is flagged."""
    prep = None
    with panel("The text"):
        prep = prepared(shared, text)
    if prep is not None and prep.truncated:
        st.warning(f"The text has {prep.n_tokens} tokens; only the first {len(prep.tokens)} "
                   f"(the model's maximum) are explained.")
    if prep is not None:
        unknown_warning(shared.model, text)
    return prep


def unknown_warning(model: models.TextModel, text: str) -> None:
    """Warn when the model's vocabulary maps over 10% of the text's tokens to its unknown piece."""
    share = models.text.unknown_share(model, text)
    if share > models.text.UNKNOWN_WARNING_SHARE:
        hint = (f"Try **{models.text.MULTILINGUAL}**, which reads Chinese, Japanese and English."
                if model.name != models.text.MULTILINGUAL else "Those characters carry no information for it.")
        st.warning(f"{share:.0%} of this text's tokens are unknown to {model.name} (mapped to "
                   f"{model.tokenizer.unk_token}): its prediction and scores ignore them. {hint}")
