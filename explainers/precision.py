"""Fast mode: bfloat16 autocast for the input-gradient methods, where the hardware runs it natively.

``precision="bfloat16"`` runs the forward passes of saliency, SmoothGrad and IG under
``torch.autocast`` (matmuls and convolutions in bfloat16, reductions and the input gradient in
float32). It pays only where bfloat16 arithmetic is native: CUDA GPUs with bfloat16 support, and
CPUs with AVX512-BF16 or AMX. Elsewhere it is emulated and slower: on this project's AVX2 CPU,
12.7x the float32 time for a resnet50 forward + backward and 17x for SmoothGrad on the bundled
EfficientNet-Lite0 (``bench/results/fast_mode.md``).

It is approximate: 8 mantissa bits, and ReLU units near their kink flip, so the gradients differ
from float32 by 0.3-0.7 relative L2 per pixel (maps' Pearson correlation 0.77-0.97) on the
bundled model and on resnet18 (tests/test_precision.py, bench/results/fast_mode.md).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

PRECISIONS = ("float32", "bfloat16")


def native_bfloat16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` runs bfloat16 matmuls/convolutions natively (so fast mode is faster)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """``torch.autocast`` to bfloat16 for ``precision="bfloat16"``; a no-op context for float32."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")
