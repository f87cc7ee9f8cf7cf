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

With the original text and the tokenizer's character offsets (:func:`token_offsets`), a word
is shown as the characters it covers in the text (:func:`word_surface`), never as a piece
string: an ``[UNK]`` or ``<unk>`` piece shows the character it stands for, and normalised
characters (a full-width comma) show as typed. Chinese and Japanese are written without
spaces, so there every piece that holds a CJK character is a word of its own (XLM-R pieces
are mostly whole words or morphemes there: 这家 / 酒店 / 的服务; WordPiece splits CJK text
into single characters anyway); a bare ``▁`` piece joins the piece after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CONTINUATION_PREFIX = "##"
START_MARKERS = ("▁", "Ġ")
# Scripts written without spaces between words: Han, kana, CJK punctuation, full-width forms.
_CJK_RANGES = ((0x3000, 0x30FF), (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
               (0xF900, 0xFAFF), (0xFF00, 0xFFEF), (0x20000, 0x2FA1F))

Offsets = Sequence[tuple[int, int]]


def is_cjk(char: str) -> bool:
    """True for a Han, kana, CJK punctuation or full-width character."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def token_offsets(tokenizer, text: str, tokens: Sequence[str]) -> list[tuple[int, int]] | None:
    """Each token's ``(start, end)`` character span in ``text``, or None when it cannot be known.

    Re-tokenises ``text`` with the (fast) tokenizer's offset mapping, truncated to
    ``len(tokens)``, and returns the spans only if that gives exactly ``tokens``.
    """
    if tokenizer is None or not getattr(tokenizer, "is_fast", False) or not text:
        return None
    try:
        enc = tokenizer(text, truncation=True, max_length=len(tokens), return_offsets_mapping=True,
                        verbose=False)
    except (TypeError, ValueError, NotImplementedError):
        return None
    if tokenizer.convert_ids_to_tokens(enc["input_ids"]) != list(tokens):
        return None
    return [(int(a), int(b)) for a, b in enc["offset_mapping"]]


def word_surface(text: str, spans: Offsets) -> str:
    """The characters of ``text`` that a word's pieces cover (from the first start to the last end)."""
    spans = [s for s in spans if s[1] > s[0]]
    if not spans:
        return ""
    return text[min(a for a, _ in spans) : max(b for _, b in spans)].strip()


def detect_scheme(tokenizer=None, tokens: Sequence[str] = ()) -> str:
    """``"continuation"`` or ``"start"``: from a fast tokenizer's model type, else from markers."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return "continuation" if type(backend.model).__name__ == "WordPiece" else "start"
    if any(t.startswith(START_MARKERS) for t in tokens):
        return "start"
    return "continuation"


def _bare(token: str) -> str:
    """A piece without its word marker (``##``, ``▁``, ``Ġ``)."""
    if token.startswith(CONTINUATION_PREFIX):
        return token[len(CONTINUATION_PREFIX):]
    return token.lstrip("".join(START_MARKERS))


def word_groups(tokens: Sequence[str], special: Sequence[bool], scheme: str,
                text: str | None = None, offsets: Offsets | None = None) -> list[list[int]]:
    """Token positions of each word, in order; special tokens are left out.

    With ``text`` and ``offsets`` (``"start"`` scheme: SentencePiece marks only the pieces after
    a space, so a CJK sentence would be one word), a piece that begins with a CJK character, or
    follows one, also starts a word, unless the word so far covers no character (a bare ``▁``).
    WordPiece tokenizers split CJK text themselves and mark continuations: left as they are.
    """
    if scheme not in ("continuation", "start"):
        raise ValueError(f"unknown word scheme {scheme!r}")
    use_cjk = (scheme == "start" and text is not None and offsets is not None
               and len(offsets) == len(tokens))
    groups: list[list[int]] = []
    open_word = False
    open_text = ""
    for i, (token, is_special) in enumerate(zip(tokens, special, strict=True)):
        if is_special:
            open_word = False
            continue
        piece_text = text[offsets[i][0] : offsets[i][1]] if use_cjk and _bare(token) else ""
        if scheme == "continuation":
            starts = not (open_word and token.startswith(CONTINUATION_PREFIX))
        else:
            starts = not open_word or token.startswith(START_MARKERS)
        if not starts and use_cjk and open_text.strip() and piece_text.strip():
            starts = is_cjk(open_text.strip()[-1]) or is_cjk(piece_text.strip()[0])
        if starts and open_word and use_cjk and not open_text.strip():
            starts = False  # the open word is a bare marker: this piece completes it
        open_text = piece_text if starts else open_text + piece_text
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
                scheme: str, tokenizer=None, text: str | None = None,
                offsets: Offsets | None = None) -> tuple[list[str], np.ndarray, list[int]]:
    """Words, word scores (sum over pieces, along the last axis) and each token's word index.

    ``scores`` is (T,) or (L, T); the word scores are (W,) or (L, W). Special tokens get
    word index -1. With the original ``text`` (and ``offsets``, else found with
    :func:`token_offsets` through ``tokenizer``) words are the text's own characters.
    """
    if offsets is None and text is not None:
        offsets = token_offsets(tokenizer, text, tokens)
    if offsets is not None and (text is None or len(offsets) != len(tokens)):
        offsets = None
    groups = word_groups(tokens, special, scheme, text, offsets)
    membership = np.zeros((len(tokens), len(groups)), dtype=np.float64)
    token_word = [-1] * len(tokens)
    for w, group in enumerate(groups):
        for i in group:
            membership[i, w] = 1.0
            token_word[i] = w
    if offsets is not None:
        words = [word_surface(text, [offsets[i] for i in group]) or word_text([tokens[i] for i in group], tokenizer)
                 for group in groups]
    else:
        words = [word_text([tokens[i] for i in group], tokenizer) for group in groups]
    word_scores = np.asarray(scores, dtype=np.float64) @ membership
    return words, word_scores, token_word
