"""Attention weights of a transformer classifier for one prepared text, for display.

Hugging Face models return attentions only with eager attention (transformers 5 with SDPA
returns none): load with ``attn_implementation="eager"``.
"""

from __future__ import annotations

import torch
from torch import nn

from explainers.capture import preserved_state
from explainers.errors import ExplainerError
from explainers.text import PreparedText, is_transformer, rollout


def attention_weights(model: nn.Module, prepared: PreparedText) -> torch.Tensor:
    """(L, H, T, T) attention probabilities: layer, head, query token, key token."""
    if not is_transformer(model):
        raise ExplainerError("This model has no attention layers (it is not a transformer).")
    with preserved_state(model), torch.no_grad():
        attentions = model(**prepared.inputs, output_attentions=True).attentions
    if not attentions:
        raise ExplainerError(
            "This model did not return attention weights (attention implementation "
            f"{getattr(model.config, '_attn_implementation', '?')!r}); load it with "
            'attn_implementation="eager" to see attention.'
        )
    return torch.stack([a[0].float() for a in attentions])


def attention_rollout_matrix(weights: torch.Tensor) -> torch.Tensor:
    """(T, T) rollout (Abnar & Zuidema 2020) from (L, H, T, T) weights; see ``explainers.text.rollout``."""
    return rollout(list(weights))
