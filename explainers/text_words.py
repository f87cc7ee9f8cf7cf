"""Grouping a tokenizer's subword tokens into words, and token scores into word scores.

Two marking schemes cover the tokenizers in use:

* ``"continuation"`` (WordPiece, BERT family): a piece that continues a word starts with
  ``##``; every other piece starts a word.
* ``"start"`` (SentencePiece ``▁`` and byte-level BPE ``Ġ``): a piece that starts a word
  carries the marker; unmarked pieces continue the current word, except right after a
  special token or at the start of the text.

Special tokens ([CLS], [SEP], <s>, [PAD], ...) belong to no word. A word's score is the
**sum** of its pieces' scores (attributions are additive over tokens: IG's completeness
and Grad-CAM's linear weighting both survive summation, not averaging).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CONTINUATION_PREFIX = "##"
START_MARKERS = ("▁", "Ġ")


def detect_scheme(tokenizer=None, tokens: Sequence[str] = ()) -> str:
    """``"continuation"`` or ``"start"``: from a fast tokenizer's model type, else from markers."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return "continuation" if type(backend.model).__name__ == "WordPiece" else "start"
    if any(t.startswith(START_MARKERS) for t in tokens):
        return "start"
    return "continuation"


def word_groups(tokens: Sequence[str], special: Sequence[bool], scheme: str) -> list[list[int]]:
    """Token positions of each word, in order; special tokens are left out."""
    if scheme not in ("continuation", "start"):
        raise ValueError(f"unknown word scheme {scheme!r}")
    groups: list[list[int]] = []
    open_word = False
    for i, (token, is_special) in enumerate(zip(tokens, special, strict=True)):
        if is_special:
            open_word = False
            continue
        if scheme == "continuation":
            starts = not (open_word and token.startswith(CONTINUATION_PREFIX))
        else:
            starts = not open_word or token.startswith(START_MARKERS)
        if starts:
            groups.append([i])
        else:
            groups[-1].append(i)
        open_word = True
    return groups


def word_text(pieces: Sequence[str], tokenizer=None) -> str:
    """The surface form of a word's pieces (the tokenizer's own detokenizer when given)."""
    if tokenizer is not None:
        return tokenizer.convert_tokens_to_string(list(pieces)).strip()
    text = "".join(p[len(CONTINUATION_PREFIX):] if p.startswith(CONTINUATION_PREFIX) else p
                   for p in pieces)
    for marker in START_MARKERS:
        text = text.replace(marker, " ")
    return text.strip()


def merge_words(tokens: Sequence[str], special: Sequence[bool], scores: np.ndarray,
                scheme: str, tokenizer=None) -> tuple[list[str], np.ndarray, list[int]]:
    """Words, word scores (sum over pieces, along the last axis) and each token's word index.

    ``scores`` is (T,) or (L, T); the word scores are (W,) or (L, W). Special tokens get
    word index -1.
    """
    groups = word_groups(tokens, special, scheme)
    membership = np.zeros((len(tokens), len(groups)), dtype=np.float64)
    token_word = [-1] * len(tokens)
    for w, group in enumerate(groups):
        for i in group:
            membership[i, w] = 1.0
            token_word[i] = w
    words = [word_text([tokens[i] for i in group], tokenizer) for group in groups]
    word_scores = np.asarray(scores, dtype=np.float64) @ membership
    return words, word_scores, token_word
