"""Method options: each a default and a validator, and the one routine that fills and checks them.

Every method's record (:mod:`explainers.registry`) holds an option table ``name -> Option``.
Images and text share the names (``steps``, ``baseline``, ``samples``, ``noise_level``,
``tolerance``, ``max_steps``, ``seed``, ``memory_mb``, ``progress``, ``score``); the old text
spellings (``n_steps``, ``baseline="zeros"``) are translated here with a DeprecationWarning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from explainers.errors import ExplainerError
from explainers.precision import PRECISIONS
from explainers.targets import SCORES

MAX_SAMPLES = 10_000
Check = Callable[[Any], None]


@dataclass(frozen=True)
class Option:
    """One option of a method: its default and a validator that raises ExplainerError on a bad value."""

    default: Any
    check: Check
    help: str = ""

    def __iter__(self):  # ``default, check = option``, as the old (default, validator) tuples
        return iter((self.default, self.check))


OptionTable = Mapping[str, Option]


def choice(name: str, allowed: Sequence[str]) -> Check:
    def check(value: Any) -> None:
        if value not in allowed:
            raise ExplainerError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}.")
    return check


def count(name: str, low: int = 1, high: int = MAX_SAMPLES) -> Check:
    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ExplainerError(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
    return check


def number(name: str, low: float, low_ok: bool, high: float | None = None) -> Check:
    def check(value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < low or (value == low and not low_ok) or (high is not None and value > high):
            bound = f">= {low}" if low_ok else f"> {low}"
            bound += f" and <= {high}" if high is not None else ""
            raise ExplainerError(f"{name} must be a finite number {bound}, got {value!r}.")
    return check


def flag(name: str) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, bool):
            raise ExplainerError(f"{name} must be True or False, got {value!r}.")
    return check


def check_seed(value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ExplainerError(f"seed must be None or an int, got {value!r}.")


def check_progress(value: Any) -> None:
    if value is not None and not callable(value):
        raise ExplainerError("progress must be None or a callable progress(done, total).")


def check_black(value: Any) -> None:
    if value is None:
        return
    try:
        black = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ExplainerError("black must be one finite number per channel.") from err
    if not torch.isfinite(black).all():
        raise ExplainerError("black must be one finite number per channel (no NaN).")


def baseline_check(allowed: Sequence[str]) -> Check:
    """A named baseline from ``allowed`` or a tensor (images: broadcastable to the input)."""
    named = choice("baseline", tuple(allowed) + ("<a tensor>",))

    def check(value: Any) -> None:
        if not isinstance(value, torch.Tensor):
            named(value)
    return check


def check_layers(value: Any) -> None:
    if value is not None and (isinstance(value, str) or not all(isinstance(v, str) for v in value)):
        raise ExplainerError("layers must be None or a list of module names.")


LAYERS = Option(None, check_layers, "text: module names of the rows; None: every encoder layer (transformers)")
SCORE = Option("logit", choice("score", SCORES), "logit (before softmax) or probability")
PRECISION = Option("float32", choice("precision", PRECISIONS), "bfloat16 = fast mode (explainers.precision)")
SEED = Option(None, check_seed, "noise seed; None draws a fresh one (recorded in extras['seed'])")
MEMORY = Option(1024.0, number("memory_mb", 0.0, False), "memory budget for one chunk of passes, MiB")
PROGRESS = Option(None, check_progress, "progress(done, total), called after each chunk")
NOISY: dict[str, Option] = {
    "samples": Option(25, count("samples"), "noisy copies"),
    "noise_level": Option(0.15, number("noise_level", 0.0, True), "sigma / (max - min) of each item"),
    "seed": SEED,
    "memory_mb": MEMORY,
    "progress": PROGRESS,
}
"""The options of every method that averages over noisy copies (SmoothGrad, VarGrad, Smooth Grad-CAM++)."""

RENAMED = {"n_steps": "steps"}
"""Old option spelling -> new one (text methods before the one convention)."""
RENAMED_VALUES = {("baseline", "zeros"): "zero"}


def modernise(given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` with old spellings replaced by the current ones, warning once per use."""
    out = {}
    for name, value in given.items():
        if name in RENAMED:
            warnings.warn(f"option {name!r} is now {RENAMED[name]!r}", DeprecationWarning, stacklevel=4)
            name = RENAMED[name]
        if isinstance(value, str) and (name, value) in RENAMED_VALUES:
            new = RENAMED_VALUES[name, value]
            warnings.warn(f"{name}={value!r} is now {name}={new!r}", DeprecationWarning, stacklevel=4)
            value = new
        out[name] = value
    if "n_steps" in given and "tolerance" not in given:
        out["tolerance"] = 0.0  # the old spelling meant a fixed number of steps
    return out


def resolve(method: str, table: OptionTable, given: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """The options in effect for ``method``: defaults filled in, values checked; unknown names refused if ``strict``."""
    unknown = sorted(set(given) - set(table))
    if strict and unknown:
        valid = ", ".join(table) or "none"
        raise ExplainerError(f"Unknown option(s) {', '.join(unknown)} for {method}; its options: {valid}.")
    chosen = {}
    for name, option in table.items():
        value = given.get(name, option.default)
        option.check(value)
        chosen[name] = value
    return chosen
