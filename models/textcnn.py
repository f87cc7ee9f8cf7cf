"""A small convolutional sentence classifier over frozen MiniLM word embeddings (Kim, 2014).

    e = embed(input_ids) * mask                       (B, T, 384), frozen MiniLM word vectors
    h_k = ReLU(conv_k(e))                             (B, C, T) per kernel width k, "same" padding
    z = concat_k pool_t(h_k over unmasked t)          (B, C * len(widths)), max or mean
    logits = head(dropout(z))                         (B, num_labels)

Y. Kim, "Convolutional Neural Networks for Sentence Classification", EMNLP 2014.
Padding positions are zeroed before the convolutions, exactly like the convolutions' own zero
padding, and excluded from pooling, so a sentence gets the same logits alone or in a padded batch.
``convs.<i>`` (conv + ReLU) outputs ``(B, C, T)`` aligned with the tokens: the Grad-CAM layers.
The embedding matrix is read from the packaged encoder at load time and never shipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from explainers.errors import ExplainerError
from models.sentiment_data import minilm_dir

_EMBEDDING_KEY = "embeddings.word_embeddings.weight"


def minilm_word_embeddings() -> torch.Tensor:
    """MiniLM's ``(30522, 384)`` word embedding matrix, read alone from the packaged safetensors."""
    with safe_open(minilm_dir() / "model.safetensors", framework="pt") as f:
        return f.get_tensor(_EMBEDDING_KEY)


class TextCNN(nn.Module):
    """Parallel 1-d convolutions of several widths, global pooling over tokens, linear head."""

    def __init__(self, embeddings: torch.Tensor, kernel_sizes: tuple[int, ...] = (1, 3, 5),
                 channels: int = 100, num_labels: int = 2, pooling: str = "max",
                 dropout: float = 0.5) -> None:
        super().__init__()
        if pooling not in ("max", "mean"):
            raise ValueError(f"pooling must be 'max' or 'mean', not {pooling!r}")
        self.hparams = dict(kernel_sizes=list(kernel_sizes), channels=channels,
                            num_labels=num_labels, pooling=pooling, dropout=dropout)
        self.pooling = pooling
        self.embed = nn.Embedding.from_pretrained(embeddings, freeze=True)
        dim = embeddings.shape[1]
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv1d(dim, channels, k, padding="same"), nn.ReLU()) for k in kernel_sizes
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels * len(kernel_sizes), num_labels)

    def get_input_embeddings(self) -> nn.Embedding:
        """The frozen word embedding layer (same accessor name as Hugging Face models)."""
        return self.embed

    def attribution_layers(self) -> list[str]:
        """The token-aligned layers that Grad-CAM reads (the explainers' protocol for text models)."""
        return [f"convs.{i}" for i in range(len(self.convs))]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, num_labels)`` for token ids ``(B, T)``; mask 1 = token, 0 = padding.

        ``token_type_ids`` is accepted and ignored so that ``net(**tokenizer(...))`` works as for BERT.
        """
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        m = mask.unsqueeze(1).to(self.embed.weight.dtype)                  # (B, 1, T)
        x = self.embed(input_ids).transpose(1, 2) * m                      # (B, D, T)
        pooled = []
        for conv in self.convs:
            h = conv(x)                                                    # (B, C, T), >= 0
            if self.pooling == "max":
                # ReLU outputs are >= 0, so zeroing padding cannot win the max over real tokens.
                pooled.append((h * m).amax(dim=2))
            else:
                pooled.append((h * m).sum(dim=2) / m.sum(dim=2).clamp_min(1.0))
        return self.head(self.dropout(torch.cat(pooled, dim=1)))

    def trained_state(self) -> dict[str, torch.Tensor]:
        """Everything but the frozen embeddings: what a checkpoint holds."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("embed.")}


def save_textcnn(model: TextCNN, path: Path) -> None:
    """Write the conv + head weights and the hyperparameters (as metadata) to one safetensors file."""
    state = {k: v.contiguous() for k, v in model.trained_state().items()}
    save_file(state, str(path), metadata={"hparams": json.dumps(model.hparams)})


def load_textcnn(path: Path) -> TextCNN:
    """Rebuild a :class:`TextCNN` from :func:`save_textcnn`'s file and the packaged embeddings (eval mode)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "hparams" not in meta:
        raise ExplainerError(f"{path} is not a text-CNN checkpoint (no hyperparameters in its metadata).")
    hp = json.loads(meta["hparams"])
    model = TextCNN(minilm_word_embeddings(), kernel_sizes=tuple(hp["kernel_sizes"]),
                    channels=hp["channels"], num_labels=hp["num_labels"], pooling=hp["pooling"],
                    dropout=hp["dropout"])
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    if unexpected or set(missing) != {"embed.weight"}:
        raise ExplainerError(f"{path} does not match the text-CNN layout "
                             f"(missing {sorted(missing)}, unexpected {sorted(unexpected)}).")
    return model.eval()
