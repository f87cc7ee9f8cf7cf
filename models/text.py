"""Text classifier registry: the bundled sentiment models and local Hugging Face directories.

``load_text_model(name_or_path)`` returns a :class:`TextModel` whose ``.net`` is in eval mode.
BERT-family models are loaded with ``attn_implementation="eager"`` by default: with
transformers 5's default SDPA attention, ``output_attentions=True`` returns no attention
weights, and attention rollout needs them. Nothing is downloaded and remote code is never run.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import PeftModel
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BatchEncoding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from explainers.errors import ExplainerError
from models.e5_build import build_encoder
from models.hf_dirs import LOAD_ERRORS, checked_config, load_weights, read_json
from models.sentiment_data import SENTIMENT_LABELS, minilm_dir, sentiment_split
from models.textcnn import load_textcnn

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
BUNDLED_MAX_LENGTH = 128
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                    "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")


@dataclass(frozen=True)
class TextModelInfo:
    """One entry of :func:`text_models`: a loadable name, what it is, whether it needs no network."""

    name: str
    description: str
    offline_ok: bool


@dataclass(frozen=True, eq=False)
class TextModel:
    """A loaded text classifier. Shared across sessions: it holds no per-call state.

    Tokenise through :meth:`encode` (it serialises calls: a fast tokenizer is not thread-safe).
    ``net(input_ids=..., attention_mask=...)`` gives a ``SequenceClassifierOutput`` (kind "bert")
    or a logits tensor ``(B, C)`` (kind "cnn"); :meth:`logits` hides the difference.
    """

    net: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    labels: list[str]
    name: str
    kind: str
    max_length: int
    # A fast tokenizer mutates its truncation/padding settings on every call: serialise calls.
    _tokenizer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def encode(self, texts: str | list[str]) -> BatchEncoding:
        """Token ids and attention mask ``(B, T)`` as tensors, padded, truncated to ``max_length``."""
        with self._tokenizer_lock:
            return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                  return_tensors="pt")

    @torch.no_grad()
    def logits(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Logits ``(N, C)`` for ``texts`` in their order, run in batches of similar length."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.encode([texts[j] for j in order[i : i + batch_size]])
            out.append(as_logits(self.net(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])))
        return torch.cat(out)[torch.argsort(torch.tensor(order))]


def heldout_accuracy(model: TextModel) -> float:
    """Accuracy of ``model`` on the held-out part of :func:`models.sentiment_data.sentiment_split`."""
    split = sentiment_split()
    predicted = model.logits(split.test_texts).argmax(-1)
    return (predicted == torch.tensor(split.test_labels)).float().mean().item()


def as_logits(output) -> torch.Tensor:
    """The logits tensor of a Hugging Face output object, or the tensor itself."""
    return getattr(output, "logits", output)


def minilm_classifier(attn_implementation: str | None = "eager", seed: int = 0) -> PreTrainedModel:
    """The packaged MiniLM encoder under a fresh 2-way sentiment head (pooler kept, classifier new, seeded)."""
    return encoder_classifier(minilm_dir(), attn_implementation, seed).eval()


def _merged(base: PreTrainedModel, adapter_dir: Path) -> PreTrainedModel:
    """``base`` with the LoRA adapter in ``adapter_dir`` merged into its weights, in eval mode."""
    with warnings.catch_warnings():  # peft asks transformers a deprecated question: not the user's concern
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        return PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().eval()


def _load_minilm_sentiment(attn_implementation: str | None) -> TextModel:
    adapter = ARTIFACTS / "minilm-sentiment"
    if not (adapter / "adapter_model.safetensors").is_file():
        raise ExplainerError(f"The minilm-sentiment adapter is missing from {adapter}.")
    return TextModel(net=_merged(minilm_classifier(attn_implementation), adapter),
                     tokenizer=AutoTokenizer.from_pretrained(minilm_dir()),
                     labels=list(SENTIMENT_LABELS), name="minilm-sentiment", kind="bert",
                     max_length=BUNDLED_MAX_LENGTH)


MULTILINGUAL = "multilingual-sentiment"
UNKNOWN_WARNING_SHARE = 0.10
"""Pages warn when more than this share of a text's tokens map to the unknown piece."""
_CLASSIFIER_PARTS = ("bert.pooler.", "classifier.")


def multilingual_encoder_dir(kept_ids: list[int] | None = None) -> Path:
    """The dequantised, vocabulary-trimmed e5 encoder directory (built into the cache on first use).

    ``kept_ids``: original XLM-R piece ids to keep; default: the list shipped with the bundled
    model (``models/artifacts/multilingual-sentiment/kept_ids.json``).
    """
    if kept_ids is None:
        kept_file = ARTIFACTS / MULTILINGUAL / "kept_ids.json"
        if not kept_file.is_file():
            raise ExplainerError(f"The {MULTILINGUAL} vocabulary list is missing: {kept_file}.")
        kept_ids = read_json(kept_file)
    return build_encoder(kept_ids)


def encoder_classifier(encoder_dir: Path, attn_implementation: str | None = "eager",
                       seed: int = 0) -> PreTrainedModel:
    """A BERT encoder saved in ``encoder_dir`` under a fresh 2-way sentiment head (seeded).

    Built from the config and loaded with ``load_state_dict`` (keys with or without the
    ``bert.`` prefix): only the pooler and the classifier may be missing (checked), so nothing
    is printed. ``from_pretrained`` would log a load report of "newly initialized" weights that
    the adapter then replaces: not the user's concern.
    """
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig.from_pretrained(
        encoder_dir, num_labels=len(SENTIMENT_LABELS), id2label=dict(enumerate(SENTIMENT_LABELS)),
        label2id={name: i for i, name in enumerate(SENTIMENT_LABELS)},
        architectures=["BertForSequenceClassification"])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = BertForSequenceClassification._from_config(config, attn_implementation=attn_implementation)
    weights = {k: v for k, v in load_file(encoder_dir / "model.safetensors").items()
               if not k.endswith("position_ids")}  # a buffer older transformers saved (MiniLM's file)
    if not any(k.startswith("bert.") for k in weights):  # a bare BertModel's file (MiniLM)
        weights = {f"bert.{k}": v for k, v in weights.items()}
    result = net.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(_CLASSIFIER_PARTS)]
    if missing or result.unexpected_keys:
        raise ExplainerError(f"The encoder in {encoder_dir} does not fit BERT: missing {missing[:3]}, "
                             f"unexpected {result.unexpected_keys[:3]} (a folder in .model-cache/ rebuilds when deleted).")
    return net


multilingual_classifier = encoder_classifier
"""The e5 encoder (:func:`multilingual_encoder_dir`) under a fresh sentiment head."""


def _load_multilingual_sentiment(attn_implementation: str | None) -> TextModel:
    artefact = ARTIFACTS / MULTILINGUAL
    if not (artefact / "adapter_model.safetensors").is_file():
        raise ExplainerError(f"The {MULTILINGUAL} adapter is missing from {artefact}.")
    encoder_dir = multilingual_encoder_dir()
    return TextModel(net=_merged(encoder_classifier(encoder_dir, attn_implementation), artefact),
                     tokenizer=AutoTokenizer.from_pretrained(encoder_dir),
                     labels=list(SENTIMENT_LABELS), name=MULTILINGUAL, kind="bert",
                     max_length=BUNDLED_MAX_LENGTH)


def unknown_share(model: TextModel, text: str) -> float:
    """Share of a text's (non-special) tokens that the model's tokenizer maps to its unknown piece.

    0.0 for an empty text or a tokenizer without an unknown token. Pages warn above 10%: the model
    cannot read that much of the text (e.g. Chinese through an English WordPiece vocabulary).
    """
    unk = model.tokenizer.unk_token_id
    if unk is None or not text.strip():
        return 0.0
    with model._tokenizer_lock:
        enc = model.tokenizer(text, truncation=True, max_length=model.max_length,
                              return_special_tokens_mask=True, verbose=False)
    ids = [i for i, s in zip(enc["input_ids"], enc["special_tokens_mask"]) if not s]
    return sum(i == unk for i in ids) / len(ids) if ids else 0.0


def _load_textcnn_sentiment(attn_implementation: str | None) -> TextModel:
    weights = ARTIFACTS / "textcnn-sentiment" / "textcnn.safetensors"
    if not weights.is_file():
        raise ExplainerError(f"The textcnn-sentiment weights are missing: {weights}.")
    return TextModel(net=load_textcnn(weights), tokenizer=AutoTokenizer.from_pretrained(minilm_dir()),
                     labels=list(SENTIMENT_LABELS), name="textcnn-sentiment", kind="cnn",
                     max_length=BUNDLED_MAX_LENGTH)


_BUNDLED = {
    MULTILINGUAL: (
        TextModelInfo(MULTILINGUAL,
                      "multilingual-e5-small (12-layer BERT, 4-bit weights dequantised) with a LoRA-tuned "
                      "sentiment head: Chinese reviews, Japanese phrases, English reviews",
                      True),
        _load_multilingual_sentiment,
    ),
    "minilm-sentiment": (
        TextModelInfo("minilm-sentiment",
                      "MiniLM-L6 (6-layer BERT) with a LoRA-tuned sentiment head, Rotten Tomatoes reviews",
                      True),
        _load_minilm_sentiment,
    ),
    "textcnn-sentiment": (
        TextModelInfo("textcnn-sentiment",
                      "Convolutional sentence classifier over frozen MiniLM word embeddings, Rotten Tomatoes",
                      True),
        _load_textcnn_sentiment,
    ),
}


def text_models() -> list[TextModelInfo]:
    """The bundled text classifiers, default first. Any local Hugging Face directory also loads."""
    return [info for info, _ in _BUNDLED.values()]


def _load_hf_dir(path: Path, attn_implementation: str | None) -> TextModel:
    """A local sequence-classification checkpoint, checked as :mod:`models.hf_dirs` says, with its tokenizer."""
    config = checked_config(path, "ForSequenceClassification", "a sequence classifier", ("tokenizer_config.json",))
    if not any((path / f).is_file() for f in _TOKENIZER_FILES):
        raise ExplainerError(f"{path} has no tokenizer files (e.g. tokenizer.json or vocab.txt); "
                             "save the tokenizer next to the model.")
    net = load_weights(path, AutoModelForSequenceClassification, attn_implementation=attn_implementation)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except LOAD_ERRORS as err:
        raise ExplainerError(f"Cannot load the tokenizer in {path}: {err}") from err
    limits = [512, getattr(config, "max_position_embeddings", 512), tokenizer.model_max_length]
    labels = [config.id2label[i] for i in range(config.num_labels)]
    return TextModel(net=net, tokenizer=tokenizer, labels=labels, name=str(path),
                     kind="bert", max_length=int(min(limits)))


def load_text_model(name_or_path: str | Path, attn_implementation: str | None = "eager") -> TextModel:
    """Load a bundled text classifier by name, or a local Hugging Face directory by path.

    ``attn_implementation``: "eager" (default) makes ``output_attentions=True`` return attention
    weights (needed by attention rollout); ``None`` lets transformers pick (SDPA, faster, no
    attentions). The text CNN ignores it. The bundled BERT's LoRA adapter is merged into its
    weights, so ``.net`` is a plain ``BertForSequenceClassification``.
    """
    key = str(name_or_path)
    if key in _BUNDLED:
        return _BUNDLED[key][1](attn_implementation)
    path = Path(name_or_path).expanduser().resolve()
    if path.is_dir():
        return _load_hf_dir(path, attn_implementation)
    raise ExplainerError(
        f"Unknown text model {key!r}: choose one of {', '.join(_BUNDLED)}, or give the path of a "
        "local Hugging Face directory (config.json, weights, tokenizer)."
    )
