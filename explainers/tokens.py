"""Transformer layer outputs read as image grids, so every CAM method runs on them unchanged.

The CAM family needs a layer output A (B, C, h, w). Vision transformers give two other layouts:

- tokens (B, T, D): ``prefix`` leading tokens (class, distillation, register tokens) and then the
  h * w patch tokens in row-major order (ViT, DeiT, BEiT; Hugging Face Swin stages, prefix 0);
- channels last (B, h, w, C): torchvision Swin stages and the inner layers of ConvNeXt blocks.

:func:`grid_of` infers the layout from the output shape, the input size H x W and, when the model
has one, its patch size p (:func:`patch_size`): a grid h x w belongs to the input when one stride s
gives h = floor or ceil of H / s and w = floor or ceil of W / s (square or not); for tokens,
T = prefix + h * w with 0 <= prefix <= :data:`MAX_PREFIX` (the fewest prefix tokens win), the stride
s being p * 2^k when the patch size is known (ViT patches, Swin stages after k merges), any otherwise. The prefix tokens are dropped by count, as pytorch-grad-cam's ``vit_reshape_transform``
drops the class token, and a (B, h, w, C) output is permuted as its ``swinT_reshape_transform``
does. A 4-D output whose last two sizes form such a grid is read as channels first (B, C, h, w),
the CNN case, which wins when both readings fit; any other 4-D output is read as channels first too
(a valid-padding convolution's map need not match a stride).

The reshape is a selection and a permutation, so the gradient of the map is the same reshape of
the gradient of the layer output (:meth:`Grid.to_map` is applied to both).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from explainers.errors import ExplainerError

MAX_PREFIX = 16
"""Most leading non-patch tokens recognised (class + distillation + registers; DINOv2 has 5)."""
LAYOUTS = ("channels_first", "channels_last", "tokens")


@dataclass(frozen=True)
class Grid:
    """How a layer output covers the image: ``layout`` (one of :data:`LAYOUTS`), an ``height`` x
    ``width`` grid of ``channels`` features, and ``prefix`` leading tokens that are not patches."""

    layout: str
    height: int
    width: int
    channels: int
    prefix: int = 0

    @property
    def channel_axis(self) -> int:
        """The axis of the layer output that holds the channels."""
        return 1 if self.layout == "channels_first" else -1

    def to_map(self, output: torch.Tensor) -> torch.Tensor:
        """The layer output (or its gradient) as a (B, C, h, w) map; prefix tokens dropped."""
        if self.layout == "channels_first":
            return output
        if self.layout == "channels_last":
            return output.permute(0, 3, 1, 2)
        patches = output[:, self.prefix :]
        return patches.transpose(1, 2).reshape(output.shape[0], self.channels, self.height, self.width)

    def describe(self) -> str:
        """E.g. ``768 x 14x14 (tokens, 1 class token dropped)``, as the layer lists show it."""
        text = f"{self.channels} x {self.height}x{self.width}"
        if self.layout == "tokens":
            dropped = f", {self.prefix} non-patch token{'s' * (self.prefix != 1)} dropped" if self.prefix else ""
            return f"{text} (tokens{dropped})"
        return f"{text} (channels last)" if self.layout == "channels_last" else text


def patch_size(model: nn.Module, in_channels: int = 3) -> int | None:
    """The patch size of a transformer: the first ``Conv2d`` on the image whose kernel equals its
    stride (ViT's ``conv_proj``, Hugging Face's ``patch_embeddings.projection``, Swin's first
    stage); None when the model has none."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == in_channels:
            kernel, stride = module.kernel_size, module.stride
            if kernel == stride and kernel[0] == kernel[1] and kernel[0] > 1:
                return int(kernel[0])
            return None
    return None


def grid_of(shape: tuple[int, ...], input_size: tuple[int, int], patch: int | None = None) -> Grid | None:
    """The :class:`Grid` of a layer output of ``shape`` for an input of ``input_size`` (H, W),
    or None when it is no image grid (e.g. pooled (B, C), or tokens that do not tile the image)."""
    return _grid_of(tuple(int(s) for s in shape), (int(input_size[0]), int(input_size[1])), patch)


def layer_grid(model: nn.Module, layer: str, shape: tuple[int, ...], input_size: tuple[int, int]) -> Grid:
    """:func:`grid_of` for ``layer``'s output in ``model``, or a clear error when it is no image grid."""
    grid = grid_of(tuple(shape), tuple(input_size), patch_size(model))
    if grid is None:
        height, width = input_size
        raise ExplainerError(
            f"Layer {layer!r} outputs shape {tuple(shape)}, not a (B, C, H, W) feature map of the "
            f"{height}x{width} image, nor (B, tokens, D) patch tokens that tile it. Pick a convolutional "
            "layer or a transformer block's layer."
        )
    return grid


@lru_cache(maxsize=4096)
def _grid_of(shape: tuple[int, ...], size: tuple[int, int], patch: int | None) -> Grid | None:
    if len(shape) == 4:
        _, c, h, w = shape
        if not _stride(h, w, size) and _stride(c, h, size):
            return Grid("channels_last", c, h, w)
        return Grid("channels_first", h, w, c)
    if len(shape) != 3:
        return None
    _, tokens, channels = shape
    found = []
    strides = range(1, max(size) + 1)
    for stride in [s for s in strides if _patch_multiple(s, patch)] if patch else strides:
        for h in _sides(size[0], stride):
            for w in _sides(size[1], stride):
                prefix = tokens - h * w
                if 0 <= prefix <= MAX_PREFIX:
                    found.append((prefix, stride, h, w))
    if not found:
        return None
    prefix, _, h, w = min(found)
    return Grid("tokens", h, w, channels, prefix)


def _sides(length: int, stride: int) -> set[int]:
    return {n for n in (length // stride, -(-length // stride)) if n > 0}


def _stride(h: int, w: int, size: tuple[int, int]) -> int | None:
    """A stride s with h in floor/ceil(H / s) and w in floor/ceil(W / s), or None."""
    for stride in range(1, max(size) + 1):
        if h in _sides(size[0], stride) and w in _sides(size[1], stride):
            return stride
    return None


def _patch_multiple(stride: int, patch: int | None) -> bool:
    """Whether ``stride`` is ``patch * 2^k`` (a ViT's patches, a Swin stage after k merges)."""
    if patch is None:
        return False
    ratio, rest = divmod(stride, patch)
    return rest == 0 and ratio > 0 and ratio & (ratio - 1) == 0
