"""Activation maximisation: the input pattern a channel (or a class logit) responds to most.

For channels c_1..c_N of a layer with output A (B, C, h, w), N images are optimised together,
image n from noise to maximise its own channel's mean activation (Erhan et al. 2009; the
regularised recipe of Olah et al. 2017, "Feature Visualization", Distill):

    maximise  mean_ij A_{c_n}(T_n(rgb_n))[i, j]  -  tv * TV(rgb_n)      with Adam on rgb_n's parameters

- ``rgb_n = sigmoid(p_n)`` (``"pixel"``), or ``sigmoid(M . irfft2(s_f * P_n))`` (``"fourier"``):
  a spectrum scaled by s_f = 1 / max(|f|, 1/max(H, W)) (favours low frequencies) and colours
  decorrelated by M, the square root of ImageNet's colour covariance (Lucid's constants), which
  makes the optimisation steps natural for the network and the images readable.
- T_n: a fresh random affine transform per step (jitter = translation, small scaling and
  rotation; reflection padding), so the pattern must survive small shifts (robustness).
- TV: anisotropic total variation mean |rgb[x+1] - rgb[x]| over both axes (a smoothness penalty).

With ``layer=None`` the units are classes and the objective is the class logit.

Items never interact (eval mode, per-item loss, Adam is elementwise) and each draws its noise
and transforms from its own generator seeded by (seed, unit): a unit's image is the same whether
it is optimised alone or in a batch, so results can be cached per unit. Exactly so in float64;
in float32 the batch changes the rounding of the convolutions, which Adam's normalisation
g / sqrt(v) amplifies where gradients are tiny (seen on EfficientNet-Lite0: up to 0.014 of the
0..1 range after 4 steps; after 8-32 steps 0.3-0.4 at single pixels, 0.04 on average).
The parameters are created in the model's dtype and on its device (noise is drawn on the CPU).
The forward stops at the layer (nothing after it runs); for a ReLU/ReLU6 layer its input, the
pre-activation, is maximised by default (see :data:`ACTIVATIONS`). The model is left as found.

Speed: the optimisation's forwards take a channels_last (NHWC) input when the model has 2-D
convolutions, so oneDNN runs them, their backward and the BatchNorms in its faster layout: the
same function in 0.80-0.85x the time at batch 8 and 0.88-0.93x at batch 1 (EfficientNet-Lite0,
2-core CPU; bench/results/filters.md). In float32 the layout moves the images as much as the
batch composition does (rounding, amplified by Adam); in float64 neither changes them. The final
measurement of ``activation`` takes the plain layout, as :func:`unit_activations` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from explainers.capture import find_module, hooks, preserved_state
from explainers.engine import Progress
from explainers.errors import ExplainerError

MAX_UNITS = 16
"""Most channels (or classes) optimised in one call: memory and time grow with the batch."""
MAX_STEPS = 10_000
PARAMETERISATIONS = ("fourier", "pixel")
COLOUR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
"""Square root of ImageNet's RGB covariance, from an SVD (Lucid's ``color_correlation_svd_sqrt``)."""
INIT_STD = 0.5
"""Standard deviation of the starting image before the sigmoid (RGB noise of about +-0.12 around grey)."""


@dataclass
class Optimised:
    """Optimised images for ``units`` of ``layer`` (classes if ``layer`` is None).

    ``images`` (N, 3, H, W): RGB in [0, 1], untransformed; ``inputs``: the same, normalised for the
    model; ``activation`` (N,): each unit's mean activation (or logit) on its own image;
    ``history`` (steps, N): the objective at each step (on the transformed image).
    """

    layer: str | None
    units: list[int]
    images: torch.Tensor
    inputs: torch.Tensor
    activation: torch.Tensor
    history: torch.Tensor
    seeds: list[int]
    options: dict[str, Any] = field(default_factory=dict)


class _Reached(Exception):
    """Raised by a hook right after the target layer ran: the rest of the forward is not needed."""


ACTIVATIONS = (nn.ReLU, nn.Hardtanh)
"""Activation modules whose *input* is maximised (``nn.ReLU6`` is a ``Hardtanh``): a channel that is
zero everywhere at the start gets no gradient through the ReLU, and ReLU6 saturates at 6. Lucid
maximises the same pre-ReLU values (its ``*_pre_relu`` layers)."""


@contextmanager
def unit_means(model: nn.Module, layer: str | None, pre_activation: bool = True) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """Yields ``f(x) -> (B, C)``: each channel's mean over h, w of ``layer``'s output (its input if
    ``layer`` is an activation module and ``pre_activation``; the logits if ``layer`` is None), with
    autograd on, parameters frozen and eval mode (:func:`explainers.capture.preserved_state`).

    One hook records the value and stops the forward right there (nothing after the layer runs; a
    module called several times in one forward is read at its first call);
    :func:`explainers.capture.capture` is not used because it records outputs of a whole forward.
    """
    if layer is None:
        with preserved_state(model):
            yield model
        return
    module = find_module(model, layer)
    before = pre_activation and isinstance(module, ACTIVATIONS)
    found: list[torch.Tensor] = []

    def record(_module: nn.Module, inputs: tuple, *output: Any) -> None:
        value = inputs[0] if before else output[0]
        value = value[0] if isinstance(value, (tuple, list)) and value else value
        if not isinstance(value, torch.Tensor):
            raise ExplainerError(f"Layer {layer!r} does not output a tensor; pick another layer.")
        found.append(value)
        raise _Reached

    def means(x: torch.Tensor) -> torch.Tensor:
        found.clear()
        try:
            model(x)
        except _Reached:
            pass
        if not found:
            raise ExplainerError(f"Layer {layer!r} was not used in the forward pass; pick a layer the model runs.")
        out = found.pop()
        if out.ndim != 4:
            raise ExplainerError(
                f"Layer {layer!r} outputs shape {tuple(out.shape)}, not (B, C, H, W) channel maps; "
                "pick a convolutional layer, or no layer to maximise class logits."
            )
        return out.mean(dim=(2, 3))

    placed = {"pre": [(module, record)]} if before else {"forward": [(module, record)]}
    with preserved_state(model), hooks(model, **placed):
        yield means


def _pick(values: torch.Tensor, units: Sequence[int], layer: str | None) -> torch.Tensor:
    """Columns ``units`` of (B, C) ``values``, after checking they exist."""
    count = values.shape[1]
    bad = [u for u in units if not 0 <= u < count]
    if bad:
        what = f"layer {layer!r} has {count} channels" if layer else f"the model has {count} classes"
        raise ExplainerError(f"Unit {bad[0]} is out of range: {what} (0..{count - 1}).")
    return values[:, list(units)]


def unit_activations(
    model: nn.Module, layer: str | None, x: torch.Tensor, units: Sequence[int], pre_activation: bool = True
) -> torch.Tensor:
    """(B, len(units)) mean activation of each unit (channel, or class logit) for each image of ``x``,
    measured as :func:`maximise_activation` does (see :func:`unit_means`)."""
    with unit_means(model, layer, pre_activation) as means, torch.no_grad():
        return _pick(means(x), units, layer)


def normalised(rgb: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Model input ``(rgb - mean) / std`` per channel, for ``rgb`` in [0, 1]."""
    m = torch.as_tensor(mean, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    s = torch.as_tensor(std, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb - m) / s


def fourier_scale(height: int, width: int, decay: float = 1.0) -> torch.Tensor:
    """(H, W//2 + 1) spectrum scale 1 / max(|f|, 1 / max(H, W))^decay (f in cycles per pixel)."""
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    return 1.0 / torch.sqrt(fy**2 + fx**2).clamp_min(1.0 / max(height, width)) ** decay


def _image(param: torch.Tensor, parameterisation: str, size: tuple[int, int]) -> torch.Tensor:
    """The images before the sigmoid: ``param`` itself, or the colour-decorrelated Fourier image."""
    if parameterisation == "pixel":
        return param
    spectrum = torch.view_as_complex(param) * fourier_scale(*size).to(param.device, param.dtype)
    image = torch.fft.irfft2(spectrum, s=size, norm="ortho")
    colours = (COLOUR_CORRELATION_SQRT / COLOUR_CORRELATION_SQRT.norm(dim=0).max()).to(image.device, image.dtype)
    return torch.einsum("ij,njhw->nihw", colours, image)


def to_rgb(param: torch.Tensor, parameterisation: str, size: tuple[int, int]) -> torch.Tensor:
    """The images (N, 3, H, W) in [0, 1] that ``param`` stands for (see module doc)."""
    return torch.sigmoid(_image(param, parameterisation, size))


def initial_param(parameterisation: str, size: tuple[int, int], generator: torch.Generator,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One item's starting parameters: Gaussian noise, scaled (the map is linear) so the image
    before the sigmoid has standard deviation ``INIT_STD``: visible noise around grey. A nearly
    flat start can leave every unit of a ReLU network at zero, with no gradient to climb."""
    height, width = size
    shape = (3, height, width) if parameterisation == "pixel" else (3, height, width // 2 + 1, 2)
    param = torch.randn(shape, generator=generator).to(dtype)
    return param * (INIT_STD / _image(param[None], parameterisation, size).std())


def random_affine(draws: torch.Tensor, size: tuple[int, int], jitter: int, scale: float, rotate: float) -> torch.Tensor:
    """(N, 2, 3) affine matrices from uniform draws (N, 4) in [0, 1): translation up to ``jitter``
    pixels, scaling in [1 - scale, 1 + scale], rotation up to ``rotate`` degrees (both ways)."""
    height, width = size
    signed = 2 * draws - 1
    tx, ty = signed[:, 0] * 2 * jitter / width, signed[:, 1] * 2 * jitter / height
    zoom = 1 + scale * signed[:, 2]
    angle = signed[:, 3] * math.radians(rotate)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    return torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)


def transformed(rgb: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``rgb`` resampled through ``theta`` (bilinear, reflection padding)."""
    grid = F.affine_grid(theta, list(rgb.shape), align_corners=False)
    return F.grid_sample(rgb, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def total_variation(rgb: torch.Tensor) -> torch.Tensor:
    """(N,) anisotropic total variation: mean |horizontal difference| + mean |vertical difference|."""
    dx = (rgb[..., :, 1:] - rgb[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    dy = (rgb[..., 1:, :] - rgb[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    return dx + dy


def input_layout(model: nn.Module) -> torch.memory_format:
    """channels_last for a model with 2-D convolutions (see Speed in the module doc), else the plain layout."""
    convolutional = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return torch.channels_last if convolutional else torch.contiguous_format


def unit_seed(seed: int, unit: int) -> int:
    """The generator seed of one unit's image: depends only on (seed, unit), not on the batch."""
    return (seed * 1_000_003 + unit) % 2**63


def _check(units: Sequence[int], size: tuple[int, int], steps: int, lr: float, jitter: int, scale: float,
           rotate: float, tv: float, parameterisation: str, mean: Sequence[float], std: Sequence[float]) -> None:
    if not isinstance(units, Sequence) or isinstance(units, str) or not units:
        raise ExplainerError("Give at least one channel (or class) index to optimise.")
    if any(isinstance(u, bool) or not isinstance(u, int) for u in units):
        raise ExplainerError(f"Channel indices must be whole numbers, got {list(units)!r}.")
    if len(units) > MAX_UNITS:
        raise ExplainerError(
            f"Too many channels at once: {len(units)} asked, at most {MAX_UNITS} per run "
            "(memory and time grow with each one). Pick fewer, or run them in several batches."
        )
    if len(set(units)) != len(units):
        raise ExplainerError("Each channel may appear only once per run.")
    if min(size) < 16 or max(size) > 1024:
        raise ExplainerError(f"Image size must be between 16 and 1024 pixels, got {size}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ExplainerError(f"steps must be a whole number from 1 to {MAX_STEPS}, got {steps!r}.")
    for name, value in (("lr", lr), ("scale", scale), ("rotate", rotate), ("tv", tv), ("jitter", jitter)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ExplainerError(f"{name} must be a finite number >= 0, got {value!r}.")
    if lr == 0 or scale >= 1:
        raise ExplainerError("lr must be > 0 and scale below 1.")
    if parameterisation not in PARAMETERISATIONS:
        raise ExplainerError(f"parameterisation must be one of {', '.join(map(repr, PARAMETERISATIONS))}, got {parameterisation!r}.")
    for name, values in (("mean", mean), ("std", std)):
        if len(values) != 3 or not all(math.isfinite(v) for v in values):
            raise ExplainerError(f"{name} must be 3 finite numbers (one per RGB channel).")
    if min(std) <= 0:
        raise ExplainerError("std must be positive.")


def maximise_activation(
    model: nn.Module,
    layer: str | None,
    units: Sequence[int],
    *,
    mean: Sequence[float],
    std: Sequence[float],
    size: int | tuple[int, int] = 128,
    steps: int = 64,
    lr: float = 0.05,
    seed: int = 0,
    parameterisation: str = "fourier",
    jitter: int = 8,
    scale: float = 0.05,
    rotate: float = 5.0,
    tv: float = 0.0,
    pre_activation: bool = True,
    progress: Progress = None,
) -> Optimised:
    """Optimise one image per unit (channel of ``layer``, or class if ``layer`` is None) together.

    ``mean``/``std``: the model's normalisation of RGB in [0, 1] (x = (rgb - mean) / std).
    ``pre_activation``: for a ReLU/ReLU6 layer, maximise its input (see :data:`ACTIVATIONS`).
    ``progress(done, steps)`` is called after each step. See the module doc for the objective.
    """
    if not isinstance(model, nn.Module):
        raise ExplainerError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    hw = (size, size) if isinstance(size, int) else tuple(size)
    _check(units, hw, steps, lr, jitter, scale, rotate, tv, parameterisation, mean, std)
    if not isinstance(pre_activation, bool):
        raise ExplainerError(f"pre_activation must be True or False, got {pre_activation!r}.")
    if progress is not None and not callable(progress):
        raise ExplainerError("progress must be None or a callable progress(done, total).")
    units = list(units)
    seeds = [unit_seed(seed, u) for u in units]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    reference = next(model.parameters(), torch.empty(0))
    dtype, device = reference.dtype, reference.device
    param = torch.stack([initial_param(parameterisation, hw, g, dtype) for g in generators]).to(device).requires_grad_()
    optimiser = torch.optim.Adam([param], lr=lr)
    own = torch.arange(len(units), device=device)
    layout = input_layout(model)
    history = []
    with unit_means(model, layer, pre_activation) as means:
        for step in range(steps):
            draws = torch.stack([torch.rand(4, generator=g) for g in generators]).to(device, dtype)
            rgb = to_rgb(param, parameterisation, hw)
            seen = transformed(rgb, random_affine(draws, hw, jitter, scale, rotate))
            batch = normalised(seen, mean, std).contiguous(memory_format=layout)
            objective = _pick(means(batch), units, layer)[own, own]
            loss = (tv * total_variation(rgb) - objective).sum()
            optimiser.zero_grad(set_to_none=True)
            (param.grad,) = torch.autograd.grad(loss, param)
            optimiser.step()
            history.append(objective.detach())
            if progress is not None:
                progress(step + 1, steps)
        with torch.no_grad():
            images = to_rgb(param, parameterisation, hw)
            inputs = normalised(images, mean, std)
            activation = _pick(means(inputs), units, layer)[own, own]
    options = dict(size=hw, steps=steps, lr=lr, seed=seed, parameterisation=parameterisation,
                   jitter=jitter, scale=scale, rotate=rotate, tv=tv, pre_activation=pre_activation)
    return Optimised(layer, units, images, inputs, activation, torch.stack(history), seeds, options)
