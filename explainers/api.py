"""``explain`` and ``explain_many``: one entry point for every image method, with checked options."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from explainers import cam, gradients
from explainers.attribution import Attribution
from explainers.capture import find_module, preserved_state
from explainers.engine import predict
from explainers.errors import ExplainerError
from explainers.layers import auto_layer
from explainers.options import modernise, resolve
from explainers.registry import Method, method, methods, names
from explainers.targets import TargetSpec


def __getattr__(name: str):
    """``METHODS``, ``OPTIONS``, ``CAM_METHODS``, ``GRADIENT_METHODS``: derived from the registry (old spellings)."""
    if name == "METHODS":
        return names("image")
    if name == "CAM_METHODS":
        return tuple(m.name for m in methods("image") if m.needs_layer)
    if name == "GRADIENT_METHODS":
        return tuple(m.name for m in methods("image") if not m.needs_layer)
    if name == "OPTIONS":
        return {m.name: {k: tuple(o) for k, o in m.options.items()} for m in methods("image")}
    raise AttributeError(name)


def method_options(name: str, given: dict[str, Any], *, strict: bool = True, kind: str = "image") -> dict[str, Any]:
    """The options for method ``name``: defaults filled in, values checked; unknown names refused if ``strict``."""
    record = method(name, kind)
    return resolve(record.name, record.option_table(kind), modernise(given), strict=strict)


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
    other methods. ``options``: see ``explainers.method(name).options``.
    The model is left exactly as found (hooks, train/eval flags, ``requires_grad``).
    """
    name = _method(method, "image").name
    return explain_many(model, x, [name], [target], layer, **options)[name][0]


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

    With ``top_k`` the targets are each item's k best classes instead. Every CAM-family method
    reads one shared forward and one ``autograd.grad`` per target to the layer's output (never a
    second forward); when saliency or input x gradient is asked for too, that same backward runs
    on to the input and gives their gradients. Methods with passes of their own (noise, paths,
    perturbations) run after. Each option goes to the methods that know it; a name no requested
    method knows is refused.
    """
    check_input(model, x)
    records = [_method(m, "image") for m in dict.fromkeys(methods)]
    if not records:
        raise ExplainerError(f"No method given; choose from {', '.join(names('image'))}.")
    options = modernise(options)
    known = set().union(*(r.options for r in records))
    unknown = sorted(set(options) - known)
    if unknown:
        raise ExplainerError(f"Unknown option(s) {', '.join(unknown)} for {', '.join(r.name for r in records)}.")
    chosen = {r.name: resolve(r.name, r.options, options, strict=False) for r in records}
    if top_k is None and (isinstance(targets, (int, torch.Tensor)) or targets is None or not len(targets)):
        raise ExplainerError("targets must be a non-empty list of target specs (None, an int, or one int per item).")

    score = options.get("score", "logit")
    results: dict[str, list[Attribution]] = {}
    specs: Sequence[TargetSpec] = targets
    layered = [r for r in records if r.needs_layer]
    # Saliency-type methods ride on the layer pass's backward when it exists and nothing asks for other settings.
    riders = [r for r in records if getattr(r, "uses_input_gradient", False) and layered
              and chosen[r.name].get("precision", "float32") == "float32" and chosen[r.name].get("score") == score]
    if layered:
        layer = layer or default_layer(model, x)
        find_module(model, layer)
        passed = cam.layer_pass(
            model, x, layer, targets, top_k=top_k, gradients=any(r.needs_gradients for r in layered), score=score,
            input_gradients=bool(riders),
        )
        specs = passed.targets
        noise = _shared_noise(model, x, records, chosen, specs, layer)
        shared: dict[str, Any] = {}
        for record in layered:
            results[record.name] = [
                _layer_attribution(record, model, x, layer, chosen[record.name], passed, i, shared, noise.get(i))
                for i in range(len(specs))
            ]
        for record in riders:
            results[record.name] = [
                _finish(record.from_input_gradient(x, passed.input_gradients[i], passed.targets[i].tolist()),
                        chosen[record.name])
                for i in range(len(specs))
            ]
    elif top_k is not None:
        logits = predict(model, x)
        if not isinstance(top_k, int) or not 1 <= top_k <= logits.shape[1]:
            raise ExplainerError(f"top_k must be between 1 and {logits.shape[1]}, got {top_k!r}.")
        ranked = logits.topk(top_k, dim=1).indices
        specs = [ranked[:, k] for k in range(top_k)]
    else:
        noise = _shared_noise(model, x, records, chosen, specs, None)
    for record in records:
        if record.name not in results:
            opts = chosen[record.name]
            results[record.name] = [
                _finish(record.from_moments(noise[i]) if i in noise and record.noisy else record.explain_image(model, x, spec, opts), opts)
                for i, spec in enumerate(specs)
            ]
    return {r.name: results[r.name] for r in records}


NOISE_OPTIONS = ("samples", "noise_level", "seed", "score", "memory_mb")


def _shared_noise(
    model: nn.Module, x: torch.Tensor, records: list[Method], chosen: dict[str, dict[str, Any]],
    specs: Sequence[TargetSpec], layer: str | None,
) -> dict[int, dict[str, Any]]:
    """Noisy-copy moments per target index, from one set of passes for every noisy method asked
    for (when at least two are, with the same noise options, in float32): input moments for
    SmoothGrad / VarGrad and the layer's moments for Smooth Grad-CAM++ (its layer pass's layer)."""
    noisy = [r for r in records if r.noisy and chosen[r.name].get("precision", "float32") == "float32"]
    settings = {tuple(chosen[r.name][k] for k in NOISE_OPTIONS) for r in noisy}
    if len(noisy) < 2 or len(settings) != 1:
        return {}
    opts = chosen[noisy[0].name]
    on_layer = layer if any(r.needs_layer for r in noisy) else None
    on_input = any(not r.needs_layer for r in noisy)
    return {i: gradients.noisy_moments(model, x, spec, opts, on_layer, input_moments=on_input)
            for i, spec in enumerate(specs)}


def _method(name: Any, kind: str) -> Method:
    if not isinstance(name, str):
        raise ExplainerError(f"A method is named by a string, got {name!r}; choose one of {', '.join(names(kind))}.")
    return method(name, kind)


def _layer_attribution(
    record: Method, model: nn.Module, x: torch.Tensor, layer: str, opts: dict[str, Any], passed: cam.LayerPass,
    index: int, shared: dict[str, Any], noise: dict[str, Any] | None = None,
) -> Attribution:
    """One CAM-family Attribution for target spec ``index`` of a shared :class:`cam.LayerPass`."""
    p = cam.LayerMaps(model, x, layer, passed.activations, passed.gradients[index], passed.targets[index],
                      passed.logits, opts, shared=shared, noise=noise, grid=passed.grid, output=passed.output)
    raw = record.raw_map(p)
    maps = cam.upsample(raw, (x.shape[2], x.shape[3]))
    return _finish(Attribution(maps, p.targets.tolist(), record.name, layer, raw=raw, extras=p.extras), opts)


def _finish(attribution: Attribution, opts: dict[str, Any]) -> Attribution:
    """Record the options used, and flag items whose map is zero everywhere (``extras["all_zero"]``,
    a bool per item: e.g. IG when the image equals its baseline), so callers can say so plainly."""
    attribution.options = dict(opts)
    attribution.extras["all_zero"] = ~attribution.maps.flatten(1).any(dim=1)
    return attribution
