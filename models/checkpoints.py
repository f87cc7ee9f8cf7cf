"""Reading untrusted checkpoint files safely, and matching them to a network with clear errors.

Only two formats are read: safetensors, and torch pickles through ``torch.load(weights_only=True)``
(which refuses to run code embedded in the file).
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import torch
from torch import nn

from explainers.errors import ExplainerError

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a .safetensors or .pt/.pth/.bin file, never executing code."""
    path = Path(path)
    if not path.is_file():
        raise ExplainerError(f"No checkpoint file at {path}.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise ExplainerError(f"{path.name} is not a valid safetensors file ({err}).") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ExplainerError(
            f"{path.name} was refused: it is not a plain state_dict of tensors and would need to run "
            f"code to load ({str(err).splitlines()[0]}). Save it with torch.save(model.state_dict()) "
            "or as safetensors."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ExplainerError(f"{path.name} is not a readable torch checkpoint ({err}).") from None
    for key in WRAPPER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExplainerError(f"{path.name} does not hold a state_dict (a mapping of names to tensors).")
    return {k.removeprefix("module."): v for k, v in state.items()}


def match_state_dict(net: nn.Module, state: dict[str, torch.Tensor], arch: str) -> None:
    """Load ``state`` into ``net`` strictly, or raise ExplainerError naming what does not fit."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches (e.g. {'; '.join(wrong[:2])})")
        raise ExplainerError(
            f"This checkpoint does not fit {arch}: " + ", ".join(parts)
            + ". Is it a checkpoint for another architecture?"
        )
    net.load_state_dict(state, strict=True)


VIT_HEAD_DIM = 64
"""Width of one attention head in torchvision's ViT-B/L (768/12, 1024/16): a ViT state_dict's shapes
do not say how many heads it has, so a ViT sized by its checkpoint gets hidden_dim / 64 (at least 1)."""


def vit_sizes(state: dict[str, torch.Tensor]) -> dict[str, int] | None:
    """torchvision ``VisionTransformer`` sizes read off a ViT state_dict's shapes, or None for another model.

    Patch size and width from ``conv_proj.weight`` (D, 3, p, p), the image size from the
    position table (1, 1 + (S / p)^2, D), the depth from the ``encoder_layer_i`` keys, the MLP width
    from the first block's ``mlp.0.weight``; heads: see :data:`VIT_HEAD_DIM`.
    """
    conv, positions = state.get("conv_proj.weight"), state.get("encoder.pos_embedding")
    first = state.get("encoder.layers.encoder_layer_0.mlp.0.weight")
    if conv is None or positions is None or first is None or conv.ndim != 4 or positions.ndim != 3:
        return None
    hidden, patch = int(conv.shape[0]), int(conv.shape[2])
    side = math.isqrt(int(positions.shape[1]) - 1)
    if side * side != positions.shape[1] - 1:
        return None
    layers = {k.split(".")[2] for k in state if k.startswith("encoder.layers.encoder_layer_")}
    return {"image_size": side * patch, "patch_size": patch, "num_layers": len(layers),
            "num_heads": max(1, hidden // VIT_HEAD_DIM), "hidden_dim": hidden, "mlp_dim": int(first.shape[0])}
