"""Verdicts: what a score means, in full words, or why there is none.

A faithfulness metric's verdict compares a map's number with the same number for many random
maps (the floor): the map *beats random* only when it is better than the ``PERCENTILE``-th
percentile of the random maps (better than 95% of them), per metric; otherwise it is *no better
than random*. No verdict is given, with the reason, when the map ranks nothing (zero or the same
value everywhere), when the class's probability is already about zero (removing pixels cannot
lower it measurably; when the score is the probability), for a map of evidence *against* the
class, or when no random map was scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PERCENTILE = 95.0
MIN_PROBABILITY = 0.01
BEATS, NO_BETTER, PASSES, FAILS = "beats random", "no better than random", "passes", "fails"


@dataclass(frozen=True)
class Verdict:
    """``outcome``: one of :data:`BEATS`, :data:`NO_BETTER`, :data:`PASSES`, :data:`FAILS`, or None
    (no verdict); ``reason``: a sentence saying what the numbers mean (or why there is no verdict)."""

    metric: str
    outcome: str | None
    reason: str

    @property
    def given(self) -> bool:
        return self.outcome is not None

    @property
    def good(self) -> bool:
        return self.outcome in (BEATS, PASSES)

    @property
    def text(self) -> str:
        return f"{self.metric}: {self.outcome or 'no verdict'}. {self.reason}"


@dataclass(frozen=True)
class Metric:
    """How to read one number: its name, which direction is better, and what "better" means."""

    name: str
    higher_is_better: bool
    meaning: str


DELETION = Metric("Deletion", False, "removing its top-ranked pixels first lowers the class score faster than "
                                     "removing them in a random order")
INSERTION = Metric("Insertion", True, "restoring its top-ranked pixels first raises the class score faster than "
                                      "restoring them in a random order")
ROAD = Metric("ROAD", True, "imputing its most relevant pixels hurts the class score more, and its least relevant "
                            "pixels less, than a random ranking does")


def no_verdict(metric: Metric | str, reason: str) -> Verdict:
    return Verdict(metric.name if isinstance(metric, Metric) else metric, None, reason)


def blocker(heat: np.ndarray, probability: float | None, evidence_against: bool = False) -> str | None:
    """Why a map's faithfulness numbers get no verdict (None: they may get one); ``probability``:
    the class's on the unchanged input when the score is the probability (None for the logit)."""
    flat = np.asarray(heat, dtype=np.float64).ravel()
    if not np.any(flat):
        return "This map is zero everywhere, so it ranks no pixel above another."
    if np.ptp(flat) == 0:
        return "This map has the same value everywhere, so it ranks no pixel above another."
    if evidence_against:
        return ("This map shows evidence against the class; deletion, insertion and ROAD measure evidence "
                "for it, so its numbers are shown without a verdict.")
    if probability is not None and probability < MIN_PROBABILITY:
        return (f"The model gives this class only {probability:.1%} probability, so removing pixels cannot "
                "lower it measurably; pick a class the model believes in.")
    return None


def against_floor(metric: Metric, value: float, floor: np.ndarray, percentile: float = PERCENTILE) -> Verdict:
    """Beats random iff ``value`` is better than ``percentile``% of the random maps' values ``floor``."""
    floor = np.asarray(floor, dtype=np.float64)
    floor = floor[np.isfinite(floor)]
    if floor.size == 0:
        return no_verdict(metric, "No random maps were scored, so there is nothing to compare with.")
    q = percentile if metric.higher_is_better else 100 - percentile
    bound, median = float(np.percentile(floor, q)), float(np.median(floor))
    better = value > bound if metric.higher_is_better else value < bound
    word = "higher" if metric.higher_is_better else "lower"
    share = f"{percentile:.0f}% of {floor.size} random maps"
    if better:
        return Verdict(metric.name, BEATS, f"Its score {value:.3f} is {word} than {share} (their {q:.0f}th percentile "
                                           f"{bound:.3f}, median {median:.3f}): {metric.meaning}.")
    return Verdict(metric.name, NO_BETTER, f"Its score {value:.3f} is not {word} than {share} (their {q:.0f}th "
                                           f"percentile {bound:.3f}, median {median:.3f}): it is not shown that "
                                           f"{metric.meaning}.")
