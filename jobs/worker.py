"""One shard of a job: decode its images, explain them, score them, and return one Parquet file.

:class:`ShardWorker` loads the model once (a Ray actor keeps it for every shard it is given;
``--engine local`` makes one in-process) and turns a shard's items into Parquet bytes with one
row per (image, target, method). The maps come from the public API,
``explainers.explain_many(net, x, methods, targets, layer, **options)``; method names are data
(from the command line), never a list kept here. Methods whose options include ``samples``
(noise averaged over samples), or a ``uniform`` baseline, run one image at a time, so each map
equals the image's own map whatever shard or batch it lands in; the others run on batches of
``batch_size`` images. A failure is a row with its reason: an unreadable image is one row
(``status="failed"``, no method), a method that refuses is one row per target for that method;
nothing a single image does stops the shard.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

import explainers
import models
from evaluation.agreement import disagreement
from explainers.errors import ExplainerError
from jobs.inputs import read_bytes

SCHEMA = pa.schema([
    ("shard", pa.int32()), ("index", pa.int64()), ("name", pa.string()), ("path", pa.string()),
    ("member", pa.string()), ("sha256", pa.string()), ("label", pa.int64()), ("label_name", pa.string()),
    ("status", pa.string()), ("error", pa.string()), ("method", pa.string()), ("target", pa.int64()),
    ("target_name", pa.string()), ("target_rank", pa.int32()), ("is_label", pa.bool_()),
    ("predicted", pa.int64()), ("predicted_name", pa.string()), ("confidence", pa.float64()),
    ("target_probability", pa.float64()), ("layer", pa.string()), ("height", pa.int32()), ("width", pa.int32()),
    ("map", pa.list_(pa.float16())), ("all_zero", pa.bool_()), ("seconds", pa.float64()),
    ("deletion_auc", pa.float64()), ("insertion_auc", pa.float64()), ("random_deletion_auc", pa.float64()),
    ("random_insertion_auc", pa.float64()), ("disagreement", pa.float64()), ("extras", pa.string()),
    ("worker", pa.string()),
])
"""One row per (image, target, method); ``map`` is (height x width) float16 in row-major order."""


def option_names(method: str) -> set[str]:
    """The option names ``method`` takes, from the library (its registry when there is one)."""
    record = getattr(explainers, "method", None)
    if callable(record):
        found = record(method)  # ExplainerError for an unknown name
        table = found.option_table("image") if hasattr(found, "option_table") else getattr(found, "options", {})
        return set(table)
    try:
        return set(explainers.OPTIONS[method])
    except KeyError:
        raise ExplainerError(f"Unknown method {method!r}.") from None


def options_for(methods: Sequence[str], options: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``options`` that at least one of ``methods`` takes (explain_many refuses the rest)."""
    known = set().union(*(option_names(m) for m in methods))
    return {k: v for k, v in options.items() if k in known}


def per_image(method: str, options: dict[str, Any]) -> bool:
    """Whether ``method`` draws random numbers per call (noise samples, a uniform-noise baseline)."""
    names = option_names(method)
    return "samples" in names or ("baseline" in names and options.get("baseline") == "uniform")


def load_model(spec: dict) -> models.ImageModel:
    """The image model a job names: ``{"name": ..., "checkpoint": path or None, "num_classes": ...}``."""
    kwargs = {"num_classes": spec["num_classes"]} if spec.get("num_classes") else {}
    return models.load_image_model(spec["name"], spec.get("checkpoint"), **kwargs)


def fingerprint(net: torch.nn.Module) -> str:
    """sha256 over the network's class, parameter and buffer names, dtypes, shapes and bytes."""
    digest = hashlib.sha256(type(net).__qualname__.encode())
    for name, tensor in sorted(net.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass
class Decoded:
    item: dict
    index: int
    x: torch.Tensor
    sha256: str


def _scalar_extras(extras: dict[str, Any], i: int, batch: int) -> dict[str, Any]:
    """Item ``i``'s numbers from an Attribution's extras (per-item tensors sliced; big tensors dropped)."""
    out = {}
    for key, value in extras.items():
        if isinstance(value, torch.Tensor):
            if value.ndim == 1 and value.shape[0] == batch:
                value = value[i].item()
            elif value.ndim == 0:
                value = value.item()
            else:
                continue
        if isinstance(value, (bool, int, float, str)) or value is None:
            out[key] = value
    return out


class ShardWorker:
    """Explains shards for one job ``spec`` (see :func:`jobs.engine.worker_spec`) with one loaded model."""

    def __init__(self, spec: dict, threads: int | None = None) -> None:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(spec["seed"])
        self.spec = spec
        self.model = load_model(spec["model"])
        found = fingerprint(self.model.net)
        if spec.get("fingerprint") and found != spec["fingerprint"]:
            raise RuntimeError(f"This worker's model weights differ from the job's ({found[:12]} vs "
                               f"{spec['fingerprint'][:12]}): every worker must see the same checkpoint.")
        use_gpu = spec.get("device") == "cuda" and torch.cuda.is_available()
        self.device = torch.device("cuda" if use_gpu else "cpu")
        self.net = self.model.net.to(self.device).eval()
        self.labels = self.model.labels
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    # Ray Data calls the actor with a batch of shards: {"shard": [...], "items": [json, ...]}.
    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = [self.run_shard(int(s), json.loads(str(items))) for s, items in zip(batch["shard"], batch["items"])]
        return {key: np.array([o[key] for o in out], dtype=object if key == "data" else None) for key in out[0]}

    def run_shard(self, shard: int, items: list[dict]) -> dict[str, Any]:
        """``items`` (each with its global ``index``) -> {"shard", "data" (Parquet bytes), counts, seconds}."""
        started = time.perf_counter()
        rows: list[dict] = []
        decoded: list[Decoded] = []
        for item in items:
            try:
                data = read_bytes(item)
                image = models.open_image(data)
                x = self.model.to_tensor(self.model.resize(image))
                decoded.append(Decoded(item, item["index"], x, hashlib.sha256(data).hexdigest()))
            except ExplainerError as err:
                rows.append(self._failed(shard, item, str(err)))
            except Exception as err:  # noqa: BLE001 - any decoder failure is this image's, not the job's
                rows.append(self._failed(shard, item, f"{type(err).__name__}: {err}"))
        size = max(1, int(self.spec["batch_size"]))
        for start in range(0, len(decoded), size):
            chunk = decoded[start:start + size]
            try:
                rows += self._explain(shard, chunk)
            except Exception:  # noqa: BLE001 - isolate the image that broke the batch
                for one in chunk:
                    try:
                        rows += self._explain(shard, [one])
                    except Exception as err:  # noqa: BLE001
                        rows.append(self._failed(shard, one.item, f"{type(err).__name__}: {err}", one.sha256))
        failed_images = len({r["index"] for r in rows if r["status"] == "failed" and r["method"] is None})
        return {"shard": shard, "data": to_parquet(rows), "images": len(items), "failed": failed_images,
                "rows": len(rows), "seconds": time.perf_counter() - started}

    def _base(self, shard: int, item: dict, sha: str | None) -> dict[str, Any]:
        label = item.get("label")
        return {"shard": shard, "index": item["index"], "name": item["name"], "path": item["path"], "worker": self.worker,
                "member": item.get("member"), "sha256": sha, "label": label,
                "label_name": self.labels[label] if label is not None and 0 <= label < len(self.labels) else None}

    def _failed(self, shard: int, item: dict, reason: str, sha: str | None = None) -> dict[str, Any]:
        return self._base(shard, item, sha) | {"status": "failed", "error": reason, "method": None}

    def _targets(self, probs: torch.Tensor, chunk: list[Decoded]) -> list[list[tuple[int, bool]]]:
        """Per image: (target, is the label) pairs, the predicted / top-k classes first, no duplicates."""
        spec = self.spec["targets"]
        k = spec.get("top_k") or (1 if spec.get("predicted", True) else 0)
        ranked = probs.argsort(dim=1, descending=True)[:, :k].tolist()
        out = []
        for d, best in zip(chunk, ranked):
            chosen = list(best)
            label = d.item.get("label")
            if spec.get("label") and label is not None and label not in chosen:
                chosen.append(label)
            out.append([(t, t == label) for t in chosen])
        return out

    def _explain(self, shard: int, chunk: list[Decoded]) -> list[dict]:
        x = torch.cat([d.x for d in chunk]).to(self.device)
        with torch.no_grad():
            probs = self.net(x).float().softmax(-1).cpu()
        targets = self._targets(probs, chunk)
        methods, options, layer = self.spec["methods"], self.spec["options"], self.spec["layer"]
        # results[(i, target, method)] = (map, layer, extras, seconds) or an error string
        results: dict[tuple[int, int, str], Any] = {}
        width = max((len(t) for t in targets), default=0)
        if width:
            batched = [m for m in methods if not per_image(m, options)]
            if batched:
                specs = [[t[j][0] if j < len(t) else t[0][0] for t in targets] for j in range(width)]
                self._run(x, batched, specs, targets, range(len(chunk)), results, layer, options)
            for method in methods:
                if method in batched:
                    continue
                for i, mine in enumerate(targets):
                    self._run(x[i:i + 1], [method], [[t] for t, _ in mine], [mine], [i], results, layer, options)
        rows = []
        for i, (d, mine) in enumerate(zip(chunk, targets)):
            predicted = int(probs[i].argmax())
            rank = {int(c): r for r, c in enumerate(probs[i].argsort(descending=True).tolist())}
            for target, is_label in mine:
                found = {m: results[i, target, m] for m in methods}
                ok = {m: r for m, r in found.items() if not isinstance(r, str)}
                scores = self._scores(x[i:i + 1], target, ok) if self.spec["scores"]["enabled"] and ok else {}
                spread = disagreement({m: r[0] for m, r in ok.items()})
                for method, result in found.items():
                    row = self._base(shard, d.item, d.sha256) | {
                        "method": method, "target": target, "target_name": self.labels[target],
                        "target_rank": rank[target], "is_label": is_label if d.item.get("label") is not None else None,
                        "predicted": predicted, "predicted_name": self.labels[predicted],
                        "confidence": float(probs[i, predicted]), "target_probability": float(probs[i, target]),
                        "disagreement": spread,
                    }
                    if isinstance(result, str):
                        row |= {"status": "failed", "error": result}
                    else:
                        heat, used_layer, extras, seconds = result
                        row |= {"status": "ok", "error": None, "layer": used_layer, "height": heat.shape[0],
                                "width": heat.shape[1], "map": heat.astype(np.float16),
                                "all_zero": bool(extras.pop("all_zero", not heat.any())), "seconds": seconds,
                                "extras": json.dumps(extras, sort_keys=True, default=str)}
                        row |= scores.get(method, {})
                    rows.append(row)
        return rows

    def _run(self, x, methods, specs, targets, positions, results, layer, options) -> None:
        """explain_many for ``methods`` over ``x``; if the group is refused, each method alone (errors kept)."""
        started = time.perf_counter()
        try:
            many = explainers.explain_many(self.net, x, methods, specs, layer, **options_for(methods, options))
        except ExplainerError as err:
            if len(methods) > 1:
                for method in methods:
                    self._run(x, [method], specs, targets, positions, results, layer, options)
                return
            for pos, mine in zip(positions, targets):
                for target, _ in mine:
                    results[pos, target, methods[0]] = str(err)
            return
        seconds = (time.perf_counter() - started) / (x.shape[0] * len(methods) * len(specs))
        for method, attributions in many.items():
            for j, attribution in enumerate(attributions):
                maps = attribution.maps.detach().float().cpu().numpy()
                for b, (pos, mine) in enumerate(zip(positions, targets)):
                    if j < len(mine) and attribution.targets[b] == mine[j][0]:
                        extras = _scalar_extras(attribution.extras, b, x.shape[0])
                        results.setdefault((pos, mine[j][0], method), (maps[b], attribution.layer, extras, seconds))

    def _scores(self, x: torch.Tensor, target: int, ok: dict[str, Any]) -> dict[str, dict[str, float]]:
        """Deletion/insertion AUC (evaluation.faithfulness) of every map of one (image, target)."""
        from evaluation.faithfulness import score_maps

        opts = self.spec["scores"]
        try:
            found = score_maps(self.net, x, {m: r[0] for m, r in ok.items()}, target, steps=opts["steps"],
                               replacement=opts["replacement"], random_maps=opts["random_maps"],
                               seed=self.spec["seed"])
        except ExplainerError:
            return {}
        return {m: {"deletion_auc": s.deletion_auc, "insertion_auc": s.insertion_auc,
                    "random_deletion_auc": _finite(s.random_deletion_auc),
                    "random_insertion_auc": _finite(s.random_insertion_auc)} for m, s in found.items()}


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def to_parquet(rows: list[dict]) -> bytes:
    """Rows -> Parquet bytes in :data:`SCHEMA` (zstd; maps as list<float16>)."""
    columns: dict[str, Any] = {}
    for field in SCHEMA:
        if field.name == "map":
            continue
        columns[field.name] = pa.array([row.get(field.name) for row in rows], type=field.type)
    heats = [row.get("map") for row in rows]
    lengths = [0 if h is None else h.size for h in heats]
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    flat = np.concatenate([h.ravel() for h in heats if h is not None]) if any(lengths) else np.zeros(0, np.float16)
    columns["map"] = pa.ListArray.from_arrays(offsets, pa.array(flat.astype(np.float16), type=pa.float16()),
                                              mask=pa.array([h is None for h in heats]))
    table = pa.table({f.name: columns[f.name] for f in SCHEMA}, schema=SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
