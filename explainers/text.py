"""Token attributions for text classifiers: BERT-family encoders and a convolutional text CNN.

``explain_text(model, tokenizer, text, method, target=None, **options) -> TextAttribution``
(a list of them for a list of texts). ``model`` is the classifier module (a Hugging Face
``*ForSequenceClassification`` or a text CNN whose forward takes ``input_ids`` and
``attention_mask``); the target score is the logit by default (``score="probability"`` for
the softmax). Methods (:data:`TEXT_METHODS`):

- ``integrated_gradients`` (Sundararajan et al. 2017) on the word-embedding output e:
  ``attr = (e - e') * sum_i w_i d s / d e (e' + a_i (e - e'))`` with Gauss-Legendre nodes
  ``a_i`` and weights ``w_i`` (``steps=50``, ``tolerance`` for adaptive panels: the same path
  integral as images, :func:`explainers.gradients.path_integral`); token score = sum over the
  hidden dimension. Baseline e' (``baseline=``): ``"pad"`` (every non-special token replaced by
  [PAD], special tokens kept; default), ``"mask"`` ([MASK] instead) or ``"zero"`` (zero embeddings).
  The old spellings ``n_steps`` and ``"zeros"`` still work, with a DeprecationWarning.
  ``extras["delta"] = sum(attr) - (s(e) - s(e'))``, the completeness gap. Steps run in chunks
  sized to ``memory_mb`` (default 1024; see :mod:`explainers.engine`); ``progress(done, total)``
  is called after each chunk.
- ``saliency``: ``||d s / d e_t||_2`` per token (Simonyan et al. 2014).
- ``input_x_gradient`` (old name ``grad_x_input``): ``sum_d (d s / d e_t)_d * e_t,d`` (Shrikumar et al. 2016).
- ``layer_grad_cam``: for each layer l with output H_l (T, D): ``w_l = mean_t d s / d H_l``,
  ``score_l = ReLU(H_l w_l)`` (Selvaraju et al. 2017, applied per layer), scores (L, T). All
  layers come from one forward and one ``autograd.grad`` call. Transformers: every encoder
  layer, plus the embeddings output as row 0 with ``include_embeddings=True``. Text CNN: one
  row per convolution (kernel width), named by the model registry (``layers=``). ``signed=True`` drops the ReLU.
- ``grad_cam`` (text CNN only): the Grad-CAM of every convolution, summed over kernel widths,
  (T,). The CNN's ``convs.<i>`` outputs are aligned with the tokens ("same" padding), so the
  map's value at position t is token t's weight.
- ``attention_rollout`` (Abnar & Zuidema 2020): ``R = prod_l rownorm(mean_heads(A_l) + I)``
  (first layer rightmost); scores = row ``row`` of R (default 0, the [CLS] token). Needs the
  attention weights, i.e. a model loaded with ``attn_implementation="eager"``.

Text longer than the model's maximum length is truncated and flagged
(``extras["truncated"]``); empty text raises :class:`ExplainerError`. To run several methods
on one text, :func:`prepare_text` once (tokens, the target forward) and pass the result as
``text``, or call :func:`explain_text_many`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from explainers.attribution import Explanation
from explainers.cam import grad_cam_weights, weighted_map
from explainers.capture import capture, find_module, hooks, layer_output, preserved_state
from explainers.engine import chunked_gradients
from explainers.errors import ExplainerError
from explainers.gradients import path_integral
from explainers.options import modernise, resolve
from explainers.registry import method as registry_method
from explainers.registry import methods, names
from explainers.targets import resolve_targets, target_scores
from explainers.text_words import detect_scheme, merge_words


@dataclass
class TextAttribution(Explanation):
    """Token and word scores for one text.

    - ``tokens``: the model's tokens, special tokens included; ``special[i]`` marks them.
    - ``scores``: (T,) or (L, T) for layer methods (row names in ``layers``), raw values.
    - ``words`` / ``word_scores`` ((W,) or (L, W)): pieces merged into words (sum of piece
      scores, special tokens excluded; see :mod:`explainers.text_words`); ``token_word[i]``
      is token i's word index (-1 for special tokens).
    - ``target`` (class index), ``method``, ``options`` (in effect, defaults filled in),
      ``extras``: ``truncated`` and ``n_tokens`` (before truncation) always; ``delta`` for IG.
    """

    text: str
    tokens: list[str]
    special: list[bool]
    scores: np.ndarray
    words: list[str]
    word_scores: np.ndarray
    token_word: list[int]
    target: int
    method: str
    layers: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedText:
    """One text tokenised for one model, with its logits: reusable by every method.

    ``logits`` is None when the text was prepared without a prediction (``predict=False``): the
    first method that runs a forward of its own fills it in, or :meth:`ensure_logits` does.
    """

    text: str
    inputs: dict[str, torch.Tensor]
    tokens: list[str]
    special: list[bool]
    truncated: bool
    n_tokens: int
    logits: torch.Tensor | None
    cache: dict[tuple, Any] = field(default_factory=dict, repr=False)

    def ensure_logits(self, model: nn.Module) -> torch.Tensor:
        """The text's logits, from one no-grad forward if no method has computed them yet."""
        if self.logits is None:
            with preserved_state(model), torch.no_grad():
                self.logits = _logits(model(**self.inputs)).detach()
        return self.logits

    def batch(self, n: int) -> dict[str, torch.Tensor]:
        """The model inputs repeated ``n`` times along the batch dimension."""
        return {k: v.expand(n, -1) for k, v in self.inputs.items()}


def is_transformer(model: nn.Module) -> bool:
    """True for a Hugging Face encoder (a ``config`` with ``num_hidden_layers``)."""
    return hasattr(getattr(model, "config", None), "num_hidden_layers")


def text_methods(model: nn.Module) -> tuple[str, ...]:
    """The registered text methods that apply to ``model`` (text-CNN Grad-CAM for CNNs, attention for transformers)."""
    return tuple(m.name for m in methods("text") if m.supports_text_model(model))


def __getattr__(name: str):
    if name == "TEXT_METHODS":  # old spelling: every text method
        return names("text")
    raise AttributeError(name)


def _logits(output) -> torch.Tensor:
    return getattr(output, "logits", output)


def _max_length(model: nn.Module, tokenizer, max_length: int | None) -> int:
    """The smallest of the option, the model's position table and the tokenizer's limit."""
    limits = [max_length, getattr(getattr(model, "config", None), "max_position_embeddings", None)]
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if tokenizer_limit is not None and tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    known = [int(x) for x in limits if x is not None]
    if not known:
        raise ExplainerError("The model and tokenizer state no maximum length; pass max_length=.")
    return min(known)


def prepare_text(model: nn.Module, tokenizer, text: str, max_length: int | None = None,
                 predict: bool = True) -> PreparedText:
    """Tokenise ``text`` (truncating to the model's maximum length) and, with ``predict``, run the
    target forward (without it, the first method's own forward gives the prediction)."""
    if not isinstance(text, str):
        raise ExplainerError(f"Text must be a string, not {type(text).__name__}.")
    if not text.strip():
        raise ExplainerError("The text is empty (or only whitespace): type a sentence to explain.")
    limit = _max_length(model, tokenizer, max_length)
    n_tokens = len(tokenizer(text, verbose=False)["input_ids"])
    encoded = tokenizer(text, truncation=True, max_length=limit, return_tensors="pt",
                        return_special_tokens_mask=True)
    special = [bool(s) for s in encoded.pop("special_tokens_mask")[0].tolist()]
    if all(special):
        raise ExplainerError("The text has no tokens the model can read (only special tokens).")
    keep = ("input_ids", "attention_mask") + (("token_type_ids",) if is_transformer(model) else ())
    device = next(model.parameters()).device
    inputs = {k: encoded[k].to(device) for k in keep if k in encoded}
    prepared = PreparedText(text, inputs, tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist()),
                            special, n_tokens > limit, n_tokens, None)
    if predict:
        prepared.ensure_logits(model)
    return prepared


def _module_name(model: nn.Module, module: nn.Module) -> str:
    for name, candidate in model.named_modules():
        if candidate is module:
            return name
    raise ExplainerError("The word-embedding layer is not a submodule of the model.")


def _word_embeddings(model: nn.Module) -> tuple[str, nn.Embedding]:
    """Name and module of the word-embedding table (``get_input_embeddings`` or the first Embedding)."""
    getter = getattr(model, "get_input_embeddings", None)
    module = getter() if callable(getter) else None
    if not isinstance(module, nn.Embedding):
        module = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    if module is None:
        raise ExplainerError("This model has no word-embedding layer, so token gradients are undefined.")
    return _module_name(model, module), module


class _FromWordEmbeddings(nn.Module):
    """``forward(e (N, T, D)) -> logits``: the model with its word-embedding output replaced by e.

    The replacement is a forward hook on the embedding table, registered for one call and
    removed in ``finally``. Position and segment embeddings, masks and the rest run as usual.
    """

    def __init__(self, model: nn.Module, embedding: nn.Embedding, prepared: PreparedText) -> None:
        super().__init__()
        self.model, self.embedding, self.prepared = model, embedding, prepared

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        with hooks(self.model, forward=[(self.embedding, lambda _m, _i, _o: embeds)]):
            return _logits(self.model(**self.prepared.batch(embeds.shape[0])))


def input_gradient(model: nn.Module, prepared: PreparedText, target: int, score: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Word embeddings e (T, D) and d s / d e (T, D); cached on ``prepared`` for reuse."""
    key = ("input_gradient", target, score)
    if key not in prepared.cache:
        _, embedding = _word_embeddings(model)
        with torch.no_grad():
            embeds = embedding(prepared.inputs["input_ids"])
        found = {}

        def keep(_start: int, _stop: int, grads: torch.Tensor, _targets) -> None:
            found["grad"] = grads[0, 0]

        chunked_gradients(_FromWordEmbeddings(model, embedding, prepared), lambda a, b: embeds[None], 1, target, keep,
                          score=score)
        prepared.cache[key] = (embeds[0], found["grad"])
    return prepared.cache[key]


def _baseline_ids(tokenizer, prepared: PreparedText, baseline: str) -> torch.Tensor:
    """The input ids with every non-special token replaced by [PAD] or [MASK]."""
    token = tokenizer.pad_token_id if baseline == "pad" else tokenizer.mask_token_id
    if token is None:
        raise ExplainerError(f"This tokenizer has no {baseline} token; choose another IG baseline.")
    ids = prepared.inputs["input_ids"].clone()
    ids[0, ~torch.tensor(prepared.special, device=ids.device)] = token
    return ids


def integrated_gradients(model: nn.Module, tokenizer, prepared: PreparedText, target: int,
                         options: dict[str, Any]) -> tuple[torch.Tensor, dict]:
    """IG over the word-embedding path (:func:`explainers.gradients.path_integral`, the images' one):
    token scores (T,) and ``delta``, ``steps``."""
    _, embedding = _word_embeddings(model)
    with torch.no_grad():
        embeds = embedding(prepared.inputs["input_ids"])
        base = (torch.zeros_like(embeds) if options["baseline"] == "zero"
                else embedding(_baseline_ids(tokenizer, prepared, options["baseline"])))
    wrapper = _FromWordEmbeddings(model, embedding, prepared)
    found = path_integral(wrapper, embeds, base, int(target), options, fold=False)
    return found["attr"][0].sum(dim=-1), {"delta": float(found["delta"][0]), "steps": int(found["steps"][0])}


def _encoder_layers(model: nn.Module, include_embeddings: bool) -> list[str]:
    """Names of the encoder blocks (the ModuleList of ``num_hidden_layers`` modules), in order."""
    count = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            names = [f"{name}.{i}" for i in range(count)]
            break
    else:
        raise ExplainerError("Cannot find this transformer's list of encoder layers.")
    if include_embeddings:
        modules = dict(model.named_modules())
        prefix = getattr(model, "base_model_prefix", "")
        embeddings = f"{prefix}.embeddings" if prefix else "embeddings"
        if embeddings not in modules:
            raise ExplainerError("Cannot find this transformer's embeddings block for layer 0.")
        names.insert(0, embeddings)
    return names


def _conv_layers(model: nn.Module, layers: Sequence[str] | None) -> list[str]:
    """The convolution blocks of a non-transformer text model: ``layers=``, else the names the
    model declares through ``attribution_layers()`` (the model registry's text CNN does), with
    the model's positions aligned to the tokens ("same" padding)."""
    if not layers:
        declared = getattr(model, "attribution_layers", None)
        if not callable(declared):
            raise ExplainerError("This model is not a transformer and declares no attribution_layers(): name its "
                                 "token-aligned convolution layers with layers=[...].")
        layers = declared()
    for name in layers:
        find_module(model, name)
    return list(layers)


def grad_cam_rows(activations: Sequence[torch.Tensor], gradients: Sequence[torch.Tensor],
                  signed: bool = False) -> torch.Tensor:
    """Per-layer Grad-CAM: for each (A (T, D), G (T, D)): ``ReLU(A @ mean_t G)``, stacked (L, T).

    The image CAM family's steps with tokens as a (T, 1) feature map and D as channels.
    """
    def as_map(t: torch.Tensor) -> torch.Tensor:
        return t.transpose(0, 1)[None, :, :, None]  # (1, D, T, 1)

    return torch.stack([weighted_map(as_map(a), grad_cam_weights(as_map(g)), relu=not signed)[0, :, 0]
                        for a, g in zip(activations, gradients, strict=True)])


def _layer_maps(model: nn.Module, prepared: PreparedText, layers: list[str], target: int | None,
                score: str, signed: bool, channels_first: bool) -> torch.Tensor:
    """Grad-CAM rows (L, T) for ``layers``, from one forward and one ``autograd.grad`` call.

    The word-embedding output is captured as a detached leaf (the root of the graph), the
    layers as they are; ``channels_first`` layers output (B, C, T) instead of (B, T, D). This
    forward is also the text's prediction when it has none yet (``target`` None: its top class).
    """
    root, _ = _word_embeddings(model)
    with capture(model, [root], detach=True), capture(model, layers) as captured:
        logits = _logits(model(**prepared.inputs))
        if prepared.logits is None:
            prepared.logits = logits.detach()
        outputs = [layer_output(captured, name) for name in layers]
        targets = resolve_targets(logits.detach(), target)
        grads = torch.autograd.grad(target_scores(logits, targets, score).sum(), outputs)
    first = (lambda t: t[0].transpose(0, 1)) if channels_first else (lambda t: t[0])
    return grad_cam_rows([first(o).detach() for o in outputs], [first(g) for g in grads], signed)


def layer_grad_cam(model, prepared, target, score: str = "logit", include_embeddings: bool = False,
                   signed: bool = False, layers: Sequence[str] | None = None) -> tuple[torch.Tensor, dict]:
    """Per-layer Grad-CAM rows (L, T) and their layer names (``extras["layers"]``)."""
    if is_transformer(model):
        names_ = list(layers) if layers else _encoder_layers(model, include_embeddings)
        return _layer_maps(model, prepared, names_, target, score, signed, False), {"layers": names_}
    names_ = _conv_layers(model, layers)
    return _layer_maps(model, prepared, names_, target, score, signed, True), {"layers": names_}


def text_cnn_grad_cam(model, prepared, target, score: str = "logit", signed: bool = False,
                      layers: Sequence[str] | None = None) -> tuple[torch.Tensor, dict]:
    """The text CNN's Grad-CAM: every convolution's row summed over kernel widths, (T,)."""
    if is_transformer(model):
        raise ExplainerError("grad_cam is the text-CNN method; for a transformer use layer_grad_cam.")
    return _layer_maps(model, prepared, _conv_layers(model, layers), target, score, signed, True).sum(dim=0), {}


def rollout(attentions: Sequence[torch.Tensor]) -> torch.Tensor:
    """Attention rollout (T, T) from per-layer attentions (heads, T, T), first layer first."""
    result = None
    for attention in attentions:
        a = attention.mean(dim=0) + torch.eye(attention.shape[-1], dtype=attention.dtype, device=attention.device)
        a = a / a.sum(dim=-1, keepdim=True)
        result = a if result is None else a @ result
    return result


def attention_weights(model: nn.Module, prepared: PreparedText) -> torch.Tensor:
    """(L, H, T, T) attention probabilities (layer, head, query, key) for one prepared text.

    Needs a transformer loaded with ``attn_implementation="eager"`` (SDPA returns none).
    """
    if not is_transformer(model):
        raise ExplainerError("This model has no attention layers (it is not a transformer).")
    with preserved_state(model), torch.no_grad():
        attentions = model(**prepared.inputs, output_attentions=True).attentions
    if not attentions:
        raise ExplainerError(
            "This model did not return attention weights (attention implementation "
            f"{getattr(model.config, '_attn_implementation', '?')!r}); load it with "
            'attn_implementation="eager" for attention rollout.'
        )
    return torch.stack([a[0].float() for a in attentions])


def _explain_prepared(model, tokenizer, prepared: PreparedText, method: str, target, options) -> TextAttribution:
    record = registry_method(method, "text")
    if not record.supports_text_model(model):
        raise ExplainerError(f"{record.label} does not apply to this model; its methods: {', '.join(text_methods(model))}.")
    options = resolve(record.name, record.text_options, modernise(options))
    if prepared.logits is None and not record.own_forward:
        prepared.ensure_logits(model)
    chosen = None if prepared.logits is None else int(resolve_targets(prepared.logits, target)[0])
    scores, extras = record.explain_text(model, tokenizer, prepared, target if chosen is None else chosen, options)
    chosen = int(resolve_targets(prepared.logits, target)[0]) if chosen is None else chosen
    method = record.name
    layers = extras.pop("layers", [])
    values = scores.detach().cpu().numpy()
    words, word_scores, token_word = merge_words(
        prepared.tokens, prepared.special, values, detect_scheme(tokenizer, prepared.tokens), tokenizer,
        text=prepared.text)  # words shown as the text's own characters (tokenizer offsets), never [UNK]
    extras.update(truncated=prepared.truncated, n_tokens=prepared.n_tokens)
    return TextAttribution(prepared.text, prepared.tokens, prepared.special, values, words,
                           word_scores, token_word, chosen, method, layers,
                           {k: v for k, v in options.items() if k != "progress"}, extras)


def explain_text(model: nn.Module, tokenizer, text: str | Sequence[str] | PreparedText, method: str,
                 target: int | None = None, max_length: int | None = None,
                 **options) -> TextAttribution | list[TextAttribution]:
    """Explain ``text`` (or each text of a list, one by one) with ``method``; see the module docstring."""
    if isinstance(text, (list, tuple)):
        return [explain_text(model, tokenizer, t, method, target, max_length, **options) for t in text]
    prepared = text if isinstance(text, PreparedText) else prepare_text(model, tokenizer, text, max_length, predict=False)
    return _explain_prepared(model, tokenizer, prepared, method, target, options)


def explain_text_many(model: nn.Module, tokenizer, text: str | PreparedText, methods: Sequence[str],
                      target: int | None = None, options: dict[str, dict] | None = None,
                      max_length: int | None = None) -> dict[str, TextAttribution]:
    """Several methods on one text: one tokenisation and target forward, shared input gradients.

    ``options`` maps a method name to its options.
    """
    prepared = text if isinstance(text, PreparedText) else prepare_text(model, tokenizer, text, max_length)
    options = options or {}
    return {m: _explain_prepared(model, tokenizer, prepared, m, target, options.get(m, {})) for m in methods}
