"""Report sections for token attributions: the prediction, the token heatmaps, the facts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from figures.image import topk_bar
from reports.document import MapFacts, Section


def text_section(
    title: str,
    text: str,
    labels: Sequence[str],
    probs: np.ndarray,
    figures: Sequence[tuple[str, go.Figure]],
    facts: Sequence[MapFacts],
    inputs: dict[str, str] | None = None,
    captions: Sequence[str] = (),
) -> Section:
    """A :class:`Section` for one text: the text itself first among the inputs, a bar of every
    class's probability, then the caller's figures (token heatmaps, layers x tokens, attention)."""
    p = np.asarray(probs, dtype=float)
    order = np.argsort(p)[::-1]
    bar = topk_bar([labels[i] for i in order], p[order], highlight=0, title=None)
    return Section(title, {"Text": text, **(inputs or {})}, [(labels[i], float(p[i])) for i in order],
                   [("Class probabilities", bar), *figures], list(facts), list(captions))
