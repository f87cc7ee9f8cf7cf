"""Checks for a user's local Hugging Face model directory, shared by every kind of model.

A directory is refused, with a message that says what to fix, when it has no ``config.json``, asks
for custom code (``auto_map`` in any of its JSON files: remote code is never run), declares an
architecture of another task, has no weights, or its weights lack tensors of the model (the head
would be random). Loading always passes ``trust_remote_code=False`` and, for ``.bin`` weights,
``weights_only=True``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from explainers.errors import ExplainerError

LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError, TypeError)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ExplainerError(f"Cannot read {path.name} in {path.parent}: {err}") from err


def checked_config(path: Path, head: str, task: str, json_files: Sequence[str] = ()) -> Any:
    """The directory's configuration, after the checks of the module docstring.

    ``head``: the suffix its architecture must end with (``ForImageClassification``); ``task``: what
    that is in words (``an image classifier``); ``json_files``: further files checked for ``auto_map``.
    """
    from transformers import AutoConfig

    if not (path / "config.json").is_file():
        raise ExplainerError(f"{path} has no config.json: it is not a Hugging Face model directory.")
    for name in ("config.json", *json_files):
        if (path / name).is_file() and "auto_map" in read_json(path / name):
            raise ExplainerError(
                f"{path / name} asks for custom code (auto_map). Remote or custom model code is "
                "never run here; use a model whose architecture is built into transformers."
            )
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as err:
        raise ExplainerError(f"Cannot read the model configuration in {path}: {err}") from err
    architectures = config.architectures or []
    if not any(a.endswith(head) for a in architectures):
        raise ExplainerError(
            f"{path} holds {', '.join(architectures) or 'a model with no declared architecture'}, "
            f"not {task} (an architecture ending in {head})."
        )
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise ExplainerError(f"{path} has no weights (model.safetensors or pytorch_model.bin).")
    return config


def load_weights(path: Path, auto_class: Callable[..., Any], **kwargs: Any) -> Any:
    """``auto_class.from_pretrained(path)`` without remote code, refusing weights that lack model tensors."""
    safetensors = any(path.glob("*.safetensors"))
    try:
        net, info = auto_class.from_pretrained(
            path, trust_remote_code=False, use_safetensors=safetensors, weights_only=True,
            output_loading_info=True, **kwargs,
        )
    except LOAD_ERRORS as err:
        raise ExplainerError(f"Cannot load the model in {path}: {err}") from err
    if info["missing_keys"]:
        raise ExplainerError(f"The weights in {path} lack {len(info['missing_keys'])} tensors of the "
                             f"model (e.g. {sorted(info['missing_keys'])[0]}): the head would be random.")
    return net.eval()
