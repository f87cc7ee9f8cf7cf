"""``explain`` and ``explain_many``: one entry point for every image method, with checked options."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from explainers import cam, gradients
from explainers.attribution import Attribution
from explainers.capture import find_module, preserved_state
from explainers.engine import noise_generator, predict
from explainers.errors import ExplainerError
from explainers.layers import auto_layer
from explainers.precision import PRECISIONS
from explainers.quadrature import RULES
from explainers.targets import SCORES, TargetSpec

CAM_METHODS = ("cam", "grad_cam", "grad_cam_plus_plus", "smooth_grad_cam_plus_plus")
GRADIENT_METHODS = ("saliency", "smoothgrad", "integrated_gradients")
METHODS = CAM_METHODS + GRADIENT_METHODS
MAX_SAMPLES = 10_000


def _choice(name: str, allowed: Sequence[str]) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value not in allowed:
            raise ExplainerError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}.")
    return check


def _count(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SAMPLES:
            raise ExplainerError(f"{name} must be a whole number from 1 to {MAX_SAMPLES}, got {value!r}.")
    return check


def _number(name: str, low: float, low_ok: bool) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < low or (value == low and not low_ok):
            bound = f">= {low}" if low_ok else f"> {low}"
            raise ExplainerError(f"{name} must be a finite number {bound}, got {value!r}.")
    return check


def _check_seed(value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ExplainerError(f"seed must be None or an int, got {value!r}.")


def _check_progress(value: Any) -> None:
    if value is not None and not callable(value):
        raise ExplainerError("progress must be None or a callable progress(done, total).")


def _check_bool(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, bool):
            raise ExplainerError(f"{name} must be True or False, got {value!r}.")
    return check


def _check_baseline(value: Any) -> None:
    if not isinstance(value, torch.Tensor):
        _choice("baseline", gradients.BASELINES + ("<a tensor>",))(value)


def _check_black(value: Any) -> None:
    if value is None:
        return
    try:
        black = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ExplainerError("black must be one finite number per channel.") from err
    if not torch.isfinite(black).all():
        raise ExplainerError("black must be one finite number per channel (no NaN).")


SCORE = ("logit", _choice("score", SCORES))
PRECISION = ("float32", _choice("precision", PRECISIONS))  # bfloat16 = fast mode, see explainers.precision
NOISY = {
    "samples": (25, _count("samples")),
    "noise_level": (0.15, _number("noise_level", 0.0, True)),
    "seed": (None, _check_seed),
    "memory_mb": (1024.0, _number("memory_mb", 0.0, False)),
    "progress": (None, _check_progress),
}
OPTIONS: dict[str, dict[str, tuple[Any, Callable[[Any], None]]]] = {
    "cam": {},
    "grad_cam": {"score": SCORE, "counterfactual": (False, _check_bool("counterfactual"))},
    "grad_cam_plus_plus": {"score": SCORE},
    "smooth_grad_cam_plus_plus": {"score": SCORE, **NOISY},
    "saliency": {"score": SCORE, "precision": PRECISION},
    "smoothgrad": {"score": SCORE, **NOISY, "precision": PRECISION},
    "integrated_gradients": {
        "score": SCORE,
        "steps": (50, _count("steps")),
        "tolerance": (0.01, _number("tolerance", 0.0, True)),
        "max_steps": (800, _count("max_steps")),
        "rule": ("gauss_legendre", _choice("rule", tuple(RULES))),
        "baseline": ("zero", _check_baseline),
        "black": (None, _check_black),
        "blur_sigma": (10.0, _number("blur_sigma", 0.0, False)),
        "seed": (None, _check_seed),
        "memory_mb": NOISY["memory_mb"],
        "progress": (None, _check_progress),
        "precision": PRECISION,
    },
}
"""Method -> option name -> (default, validator). Every method's documented options."""


def method_options(method: str, given: dict[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """The options for ``method``: defaults filled in, values checked; unknown names refused if ``strict``."""
    if method not in OPTIONS:
        raise ExplainerError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    known = OPTIONS[method]
    unknown = sorted(set(given) - set(known))
    if strict and unknown:
        valid = ", ".join(known) or "none"
        raise ExplainerError(f"Unknown option(s) {', '.join(unknown)} for {method}; its options: {valid}.")
    chosen = {}
    for name, (default, check) in known.items():
        value = given.get(name, default)
        check(value)
        chosen[name] = value
    return chosen


def check_input(model: Any, x: Any) -> None:
    """Refuse anything but an nn.Module and a finite float (B, C, H, W) tensor."""
    if not isinstance(model, nn.Module):
        raise ExplainerError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ExplainerError("x must be a float tensor of shape (B, 3, H, W), already preprocessed.")
    if x.ndim != 4 or x.shape[0] < 1 or x.shape[2] < 2 or x.shape[3] < 2:
        raise ExplainerError(f"x must have shape (B, 3, H, W) with B >= 1; got {tuple(x.shape)}.")
    if not torch.isfinite(x).all():
        raise ExplainerError("x contains NaN or infinite values.")


_AUTO_LAYERS: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, ...], str]] = weakref.WeakKeyDictionary()


def default_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The automatic target layer (:func:`explainers.layers.auto_layer`), found by probing one
    item once per model and input size and then cached, so later calls add no forward."""
    per_model = _AUTO_LAYERS.setdefault(model, {})
    key = tuple(x.shape[1:])
    if key not in per_model:
        with preserved_state(model):
            per_model[key] = auto_layer(model, x[:1])
    return per_model[key]


def explain(
    model: nn.Module, x: torch.Tensor, method: str, target: TargetSpec = None, layer: str | None = None, **options: Any
) -> Attribution:
    """Attribution maps of ``method`` for the batch ``x`` (B, C, H, W), already preprocessed.

    ``target``: None (each item's top class), an int, or one int per item. ``layer``: a name from
    ``model.named_modules()`` for the CAM family (default: the automatic layer); ignored by the
    input-gradient methods. ``options``: see :data:`OPTIONS` and each method's docstring.
    The model is left exactly as found (hooks, train/eval flags, ``requires_grad``).
    """
    if method not in METHODS:
        raise ExplainerError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    return explain_many(model, x, [method], [target], layer, **options)[method][0]


def explain_many(
    model: nn.Module,
    x: torch.Tensor,
    methods: Sequence[str],
    targets: Sequence[TargetSpec] = (None,),
    layer: str | None = None,
    *,
    top_k: int | None = None,
    **options: Any,
) -> dict[str, list[Attribution]]:
    """Several methods for several targets: ``result[method][i]`` explains ``targets[i]``.

    With ``top_k`` the targets are each item's k best classes instead. CAM, Grad-CAM and
    Grad-CAM++ share one forward and one ``autograd.grad`` per target to the layer's output
    (never a second forward); Smooth Grad-CAM++ reuses that forward's activations and adds its
    noisy passes; the input-gradient methods run their own passes. Each option goes to the
    methods that know it; a name no requested method knows is refused.
    """
    check_input(model, x)
    methods = list(dict.fromkeys(methods))
    unknown_methods = [m for m in methods if m not in METHODS]
    if unknown_methods or not methods:
        raise ExplainerError(f"Unknown method(s) {unknown_methods or '(none given)'}; choose from {', '.join(METHODS)}.")
    known = set().union(*(OPTIONS[m] for m in methods))
    unknown = sorted(set(options) - known)
    if unknown:
        raise ExplainerError(f"Unknown option(s) {', '.join(unknown)} for {', '.join(methods)}.")
    chosen = {m: method_options(m, options, strict=False) for m in methods}
    if top_k is None and (isinstance(targets, (int, torch.Tensor)) or targets is None or not len(targets)):
        raise ExplainerError("targets must be a non-empty list of target specs (None, an int, or one int per item).")

    score = options.get("score", "logit")
    results: dict[str, list[Attribution]] = {}
    specs: Sequence[TargetSpec] = targets
    cam_family = [m for m in methods if m in CAM_METHODS]
    if cam_family:
        layer = layer or default_layer(model, x)
        find_module(model, layer)
        passed = cam.layer_pass(
            model, x, layer, targets, top_k=top_k, gradients=cam_family != ["cam"], score=score
        )
        specs = passed.targets
        head = cam.classifier_head(model, layer, passed.activations, passed.logits) if "cam" in cam_family else None
        for method in cam_family:
            results[method] = [
                _cam_attribution(model, x, layer, method, chosen[method], passed, i, head) for i in range(len(specs))
            ]
    elif top_k is not None:
        logits = predict(model, x)
        if not isinstance(top_k, int) or not 1 <= top_k <= logits.shape[1]:
            raise ExplainerError(f"top_k must be between 1 and {logits.shape[1]}, got {top_k!r}.")
        ranked = logits.topk(top_k, dim=1).indices
        specs = [ranked[:, k] for k in range(top_k)]
    for method in methods:
        if method in GRADIENT_METHODS:
            run = getattr(gradients, method)
            results[method] = [_with_options(run(model, x, spec, chosen[method]), chosen[method]) for spec in specs]
    return results


def _cam_attribution(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    method: str,
    opts: dict[str, Any],
    passed: cam.LayerPass,
    index: int,
    head: torch.Tensor | None,
) -> Attribution:
    """One CAM-family Attribution for target spec ``index`` of a shared :class:`cam.LayerPass`."""
    activations, targets, grads = passed.activations, passed.targets[index], passed.gradients[index]
    extras: dict[str, Any] = {}
    if method == "cam":
        raw = cam.weighted_map(activations, cam.cam_weights(head, targets), relu=False)
    elif method == "grad_cam":
        signed = -grads if opts["counterfactual"] else grads
        raw = cam.weighted_map(activations, cam.grad_cam_weights(signed), relu=True)
    elif method == "grad_cam_plus_plus":
        raw = cam.weighted_map(activations, cam.grad_cam_plus_plus_weights(activations, grads), relu=True)
    else:
        generator = noise_generator(opts["seed"], x.device)
        extras["seed"] = generator.initial_seed()
        moments = cam.smoothed_gradient_moments(
            model, x, layer, targets, samples=opts["samples"], noise_level=opts["noise_level"],
            generator=generator, score=opts["score"], memory_mb=opts["memory_mb"], progress=opts["progress"],
        )
        raw = cam.weighted_map(activations, cam.grad_cam_plus_plus_weights(activations, *moments), relu=True)
    maps = cam.upsample(raw, (x.shape[2], x.shape[3]))
    return Attribution(maps, targets.tolist(), method, layer, dict(opts), raw=raw, extras=extras)


def _with_options(attribution: Attribution, opts: dict[str, Any]) -> Attribution:
    """Record the options used, and flag items whose map is zero everywhere (``extras["all_zero"]``,
    a bool per item: e.g. IG when the image equals its baseline), so callers can say so plainly."""
    attribution.options = dict(opts)
    attribution.extras["all_zero"] = ~attribution.maps.flatten(1).any(dim=1)
    return attribution
