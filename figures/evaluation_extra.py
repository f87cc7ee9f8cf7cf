"""Static (PNG) twins of the evaluation figures, drawn with matplotlib (Plotly's PNG export needs kaleido).

Colours, dashes and legend names come from :mod:`figures.evaluation`, so a PNG shows what its
Plotly figure shows: the same method in the same colour, with the same AUC in its legend.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from explainers.errors import ExplainerError  # noqa: E402
from figures.evaluation import curve_colour, legend_name, random_curves  # noqa: E402
from figures.style import RANDOM_BASELINE_COLOUR  # noqa: E402

DASHES = ("--", ":", "-.")


def lines_png(
    x: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    random: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    title: str = "",
    x_label: str = "fraction of pixels removed",
    y_label: str = "target probability",
    auc: Mapping[str, float] | None = None,
) -> bytes:
    """PNG bytes of :func:`figures.evaluation.curves_figure`'s lines: method colours, dashed grey
    random baselines and ``auc`` in the legend as there."""
    xs = np.asarray(x, dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)

    def check(name: str, y: Sequence[float]) -> np.ndarray:
        ys = np.asarray(y, dtype=float)
        if ys.shape != xs.shape:
            raise ExplainerError(f"Curve {name!r} has {ys.size} points for {xs.size} x values.")
        return ys

    for i, (name, y) in enumerate(curves.items()):
        ax.plot(xs, check(name, y), linewidth=2, color=curve_colour(i), label=legend_name(name, auc))
    for i, (name, y) in enumerate(random_curves(random).items()):
        ax.plot(xs, check(name, y), color=RANDOM_BASELINE_COLOUR, linestyle=DASHES[i % len(DASHES)], linewidth=1.5,
                label=legend_name(name, auc))
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white")
    plt.close(fig)
    return buf.getvalue()
