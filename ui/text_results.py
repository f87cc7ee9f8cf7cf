"""Token attributions for the Text and BERT-layers pages, computed once per
(model, text, target, method, options) and kept in the session, so display changes
(words vs tokens, shared scale) run no model pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

import explainers
from evaluation.faithfulness import FaithfulnessScore, score_tokens
from explainers.errors import ExplainerError
from explainers.text import PreparedText, TextAttribution, explain_text, prepare_text
from ui.resources import Shared


@dataclass
class TextResult:
    """A method's attribution for one text (or why it failed), and how long it took."""

    method: str
    attribution: TextAttribution | None = None
    seconds: float = 0.0
    error: str | None = None
    faithfulness: FaithfulnessScore | None = None


def _session(name: str) -> dict:
    return st.session_state.setdefault(name, {})


def prepared(shared: Shared, text: str) -> PreparedText:
    """The tokenised text and its logits for this model (one forward, cached in the session)."""
    store = _session("text_prepared")
    key = (shared.model.name, text)
    if key not in store:
        with shared.lock:
            store[key] = prepare_text(shared.model.net, shared.model.tokenizer, text, shared.model.max_length)
    return store[key]


def probabilities(prep: PreparedText) -> np.ndarray:
    return prep.logits.softmax(-1)[0].numpy()


def explain(shared: Shared, prep: PreparedText, method: str, target: int, options: dict[str, Any],
            progress: Callable[[int, int], None] | None = None) -> TextResult:
    """One method on one prepared text, from the session cache or computed now (``progress``, for
    IG, is not part of the cache key)."""
    store = _session("text_results")
    key = (shared.model.name, prep.text, target, method, tuple(sorted(options.items())))
    if key not in store:
        st.session_state["text_runs"] = text_runs() + 1
        started = time.perf_counter()
        try:
            with shared.lock:
                takes = "progress" in explainers.method(method, "text").text_options
                extra = {"progress": progress} if progress is not None and takes else {}
                attribution = explain_text(shared.model.net, shared.model.tokenizer, prep, method, target,
                                           **options, **extra)
            store[key] = TextResult(method, attribution, time.perf_counter() - started)
        except ExplainerError as err:
            store[key] = TextResult(method, error=str(err))
    return store[key]


@contextmanager
def ig_progress() -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` for :func:`explain` that shows Integrated Gradients' steps as a
    progress bar where the block is entered; the bar is removed on leaving."""
    slot = st.empty()

    def show(done: int, total: int) -> None:
        slot.progress(done / max(total, 1), text=f"Integrated Gradients: {done}/{total} steps")

    try:
        yield show
    finally:
        slot.empty()


def text_runs() -> int:
    """Explainer calls made for this session so far (shown on the pages)."""
    return st.session_state.get("text_runs", 0)


def score_results(shared: Shared, prep: PreparedText, results: list[TextResult], target: int) -> None:
    """Deletion/insertion AUC of every (T,) token map, tokens replaced by [PAD]; kept on each result."""
    todo = [r for r in results if r.attribution is not None and r.faithfulness is None and r.attribution.scores.ndim == 1]
    if not todo:
        return
    st.session_state["text_runs"] = text_runs() + 1
    with shared.lock:
        scores = score_tokens(shared.model.net, shared.model.tokenizer, prep,
                              {r.method: r.attribution.scores for r in todo}, target)
    for result in todo:
        result.faithfulness = scores[result.method]
