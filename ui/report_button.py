"""``export_report_button``: any page's "Export report" download, plus converters from the pages' results.

The HTML is built only when the button is clicked (deferred download data), from sections the
page describes with :mod:`reports` (pure Python + Plotly).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import streamlit as st

from figures.scales import Scale
from reports import MapFacts, Section, build_report, image_section, text_section
from ui.image_results import MapResult
from ui.methods import caption, label
from ui.text_results import TextResult


def export_report_button(
    sections: Callable[[], Sequence[Section]],
    *,
    title: str,
    key: str,
    file_name: str = "report.html",
    png: Callable[[], bytes] | None = None,
    label: str = "Export report (HTML)",
) -> None:
    """A download button for the self-contained report ``build_report(title, sections())``.

    ``sections`` is called only on click. ``png`` (optional, e.g. a ``figures.export.grid_png``
    call) adds a second button with the static PNG of the same maps (``<file_name stem>.png``).
    """
    left, right = st.columns(2) if png is not None else (st.container(), None)
    left.download_button(label, lambda: build_report(title, sections()), file_name, "text/html",
                         key=key, on_click="ignore", icon=":material/description:")
    if right is not None:
        right.download_button("Report maps as PNG", png, file_name.rsplit(".", 1)[0] + ".png", "image/png",
                              key=f"{key}_png", on_click="ignore", icon=":material/image:")


def map_facts(result: MapResult, labels: Sequence[str], faithfulness: Mapping[str, float] | None = None) -> MapFacts:
    """The Images page's :class:`MapResult` as report facts (time, layer, IG delta ratio and steps)."""
    scores = {"IG steps": float(result.extras["steps"])} if "steps" in result.extras else {}
    scores |= dict(faithfulness or {})
    return MapFacts(label(result.variant), labels[result.target], result.layer, result.seconds,
                    delta_ratio=result.delta_ratio, scores=scores, error=result.error)


def image_report_section(
    model: Any,
    rgb: np.ndarray,
    image_name: str,
    probs: np.ndarray,
    results: Mapping[tuple[str, int], MapResult],
    variants: Sequence[str],
    targets: Sequence[int],
    layer: str | None,
    scales: Scale | Sequence[Sequence[Scale | None]] | None = None,
    opacity: float = 0.55,
) -> Section:
    """One photo's section: rows = ``targets``, columns = ``variants``, as the Images page shows them."""
    labels = model.labels
    cells = [[results.get((v, t)) or MapResult(v, t, layer, error="not in the results") for v in variants] for t in targets]
    maps = [[c.heat for c in row] for row in cells]
    inputs = {"Image": image_name, "Model": f"{model.name}: {getattr(model, 'description', '')}".rstrip(": "),
              "Layer (CAM family)": layer or "", "Input size": f"{rgb.shape[1]}x{rgb.shape[0]} pixels"}
    return image_section(
        image_name, rgb, labels, probs, maps, [labels[t] for t in targets], [label(v) for v in variants],
        [[map_facts(c, labels) for c in row] for row in cells], scales, opacity, inputs,
        [caption(v) for v in variants],
    )


def text_facts(result: TextResult, labels: Sequence[str]) -> MapFacts:
    """A text page's :class:`TextResult` as report facts (time, IG's completeness gap)."""
    a = result.attribution
    target = labels[a.target] if a is not None else ""
    delta = float(a.extras["delta"]) if a is not None and "delta" in a.extras else None
    return MapFacts(label(result.method), target, seconds=result.seconds, delta=delta,
                    error=result.error)


def text_report_section(
    model: Any,
    text: str,
    probs: np.ndarray,
    results: Sequence[TextResult],
    figures: Sequence[tuple[str, Any]],
    inputs: Mapping[str, str] | None = None,
) -> Section:
    """One text's section: the caller's figures (as shown on the page) and one fact row per result."""
    return text_section(text[:60] + ("…" if len(text) > 60 else ""), text, model.labels, probs, figures,
                        [text_facts(r, model.labels) for r in results], {"Model": model.name, **(inputs or {})})
