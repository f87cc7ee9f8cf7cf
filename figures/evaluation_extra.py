"""Static (PNG) twins of the evaluation figures, drawn with matplotlib (Plotly's PNG export needs kaleido)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from explainers.errors import ExplainerError  # noqa: E402


def lines_png(
    x: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    random: Sequence[float] | None = None,
    title: str = "",
    x_label: str = "fraction of pixels removed",
    y_label: str = "target probability",
) -> bytes:
    """PNG bytes: one line per curve over ``x``, the random floor dashed grey (as :func:`figures.evaluation.curves_figure`)."""
    xs = np.asarray(x, dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    for name, y in curves.items():
        ys = np.asarray(y, dtype=float)
        if ys.shape != xs.shape:
            raise ExplainerError(f"Curve {name!r} has {ys.size} points for {xs.size} x values.")
        ax.plot(xs, ys, linewidth=2, label=name)
    if random is not None:
        ax.plot(xs, np.asarray(random, dtype=float), color="#7b8794", linestyle="--", linewidth=1.5, label="random")
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
