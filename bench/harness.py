"""Timing variants alternately and summarising their ratios to a reference."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Case:
    """Variants (label -> zero-argument callable) timed against ``reference`` (one of the labels).

    ``goals`` maps a label to a sentence stating the target ratio, shown next to it.
    """

    name: str
    variants: dict[str, Callable[[], object]]
    reference: str
    reps: int = 5
    warmup: int = 1
    goals: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass
class Deferred:
    """A case built only when ``name`` passes ``--only`` (for cases whose set-up is itself slow,
    e.g. a reference library's batch-size sweep); ``build()`` returns the :class:`Case`."""

    name: str
    build: Callable[[], Case]


@dataclass
class Row:
    case: str
    label: str
    median_s: float
    ratio: float
    ratio_min: float
    ratio_max: float
    ratio_q1: float
    ratio_q3: float
    goal: str


def quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def run_case(case: Case) -> list[Row]:
    """Time every variant ``reps`` times, alternating (order rotated each rep); ratios per rep."""
    labels = list(case.variants)
    for _ in range(case.warmup):
        for label in labels:
            case.variants[label]()
    times: dict[str, list[float]] = {label: [] for label in labels}
    for rep in range(case.reps):
        order = labels[rep % len(labels):] + labels[: rep % len(labels)]
        for label in order:
            start = time.perf_counter()
            case.variants[label]()
            times[label].append(time.perf_counter() - start)
    rows = []
    for label in labels:
        ratios = [t / r for t, r in zip(times[label], times[case.reference])]
        q1, q3 = quartiles(ratios)
        rows.append(
            Row(case.name, label, statistics.median(times[label]), statistics.median(ratios),
                min(ratios), max(ratios), q1, q3, case.goals.get(label, ""))
        )
    return rows


TABLE_HEADER = "| case | variant | median ms | ratio to reference (median) | min-max | IQR | goal |"


def markdown(rows: list[Row], header: str, notes: list[str]) -> str:
    lines = [header, "", TABLE_HEADER, "|---|---|---:|---:|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r.case} | {r.label} | {1000 * r.median_s:.1f} | {r.ratio:.2f} | {r.ratio_min:.2f}-{r.ratio_max:.2f} "
            f"| {r.ratio_q1:.2f}-{r.ratio_q3:.2f} | {r.goal} |"
        )
    lines += ["", *notes]
    return "\n".join(lines) + "\n"


def parse_markdown(text: str) -> list[Row]:
    """The rows of the table written by :func:`markdown` (to redraw a chart without re-running); other
    tables in the file (profiles, notes added by hand) are left alone."""
    rows: list[Row] = []
    lines = text.splitlines()
    if TABLE_HEADER not in lines:
        return rows
    for line in lines[lines.index(TABLE_HEADER) + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        low, high = (float(v) for v in cells[4].split("-"))
        q1, q3 = (float(v) for v in cells[5].split("-"))
        rows.append(Row(cells[0], cells[1], float(cells[2]) / 1000, float(cells[3]), low, high, q1, q3, cells[6]))
    return rows
