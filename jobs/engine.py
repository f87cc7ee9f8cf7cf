"""Plan a job, skip what is done, run the rest on Ray Data (or in this process), write the output.

Output directory layout::

    manifest.json            what was asked (model fingerprint, methods, options, targets, seed,
                             versions) and, once finished, the summary
    inputs.json              the planned items, in order (index, path, zip member, name, label)
    shards/part-00000.parquet  one file per shard of ``shard_size`` images, written atomically

A shard's file appears only when the shard is complete (written to a temporary name, then
renamed), so a job killed at any moment leaves only whole shards; a rerun with the same output
directory and the same request reads the manifest, keeps every finished shard and computes the
others. A rerun asking for something else (another model, methods, options, inputs) is refused
rather than mixed in.

On Ray, the shards are the rows of a ``ray.data`` dataset and ``map_batches`` sends them to a
pool of :class:`jobs.worker.ShardWorker` actors (each loads the model once; one GPU per actor
when the cluster has GPUs). Workers return Parquet bytes and this process writes them, so the
output directory only has to exist here; the input images must be readable by the workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import explainers
from explainers.errors import ExplainerError
from jobs.inputs import JobError, collect
from jobs.output import input_hw
from jobs.worker import ShardWorker, fingerprint, load_model, options_for

FORMAT = 1
ROOT = Path(__file__).resolve().parents[1]
PLAN_KEYS = ("format", "model", "fingerprint", "methods", "options", "layer", "targets", "scores", "seed",
             "shard_size", "inputs_sha256", "images")
"""Manifest fields that must match for a rerun to reuse finished shards."""
WORKER_PACKAGES = ("explainers", "models", "evaluation", "jobs")
"""The project's packages a worker imports; shipped to a cluster's workers with the job (``py_modules``)."""
ACTOR_START_S = 600
"""How long a Ray job waits for its whole actor pool to start before it gives up."""
SLOW_SHARD_ENV = "EXPLAIN_JOBS_TEST_SHARD_PAUSE_S"
"""Tests only: seconds to sleep after each shard the local engine writes (to kill a job half-way)."""


@dataclasses.dataclass
class JobRequest:
    """Everything a job needs; the CLI (``python -m jobs``) fills it from its arguments."""

    source: str
    out: str
    methods: list[str]
    model: str = "efficientnet_lite0"
    checkpoint: str | None = None
    num_classes: int | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    layer: str | None = None
    targets: str = "predicted"
    path_column: str = "path"
    label_column: str = "label"
    scores: bool = False
    score_steps: int = 20
    score_replacement: str = "zero"
    score_random_maps: int = 3
    seed: int = 0
    shard_size: int = 32
    batch_size: int = 8
    engine: str = "ray"
    address: str | None = None
    actors: int = 2
    cpus_per_actor: float = 1.0
    gpus_per_actor: float | None = None
    object_store_mb: int = 256
    retry_failed: bool = False


@dataclasses.dataclass
class Summary:
    images: int
    failed: int
    rows: int
    shards: int
    shards_done_before: int
    shards_computed: int
    images_computed: int
    seconds: float
    failures: list[tuple[str, str]]
    out: str
    bytes_on_disk: int
    marks: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    """(seconds since the job started, images computed so far) after each shard written."""

    @property
    def rate(self) -> float:
        return self.images_computed / self.seconds if self.seconds > 0 else 0.0


def parse_targets(text: str) -> dict[str, Any]:
    """``predicted`` | ``top-K`` | ``label``, comma-separated (e.g. ``predicted,label``)."""
    spec: dict[str, Any] = {"predicted": False, "top_k": None, "label": False}
    for part in [p.strip().lower() for p in text.split(",") if p.strip()]:
        if part == "predicted":
            spec["predicted"] = True
        elif part == "label":
            spec["label"] = True
        elif part.startswith("top-") and part[4:].isdigit() and 1 <= int(part[4:]) <= 100:
            spec["top_k"] = int(part[4:])
        else:
            raise JobError(f"--targets: {part!r} is not 'predicted', 'top-K' (K from 1 to 100) or 'label'.")
    if not (spec["predicted"] or spec["top_k"] or spec["label"]):
        raise JobError("--targets: give at least one of predicted, top-K, label.")
    return spec


def versions(engine: str) -> dict[str, str]:
    import numpy
    import pyarrow
    import torchvision

    found = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
             "numpy": numpy.__version__, "pyarrow": pyarrow.__version__}
    if engine == "ray":
        import ray

        found["ray"] = ray.__version__
    return found


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def shard_path(out: Path, shard: int) -> Path:
    return out / "shards" / f"part-{shard:05d}.parquet"


def finished_shards(out: Path, count: int, retry_failed: bool = False) -> set[int]:
    """Shards whose Parquet file is complete (its footer reads); a damaged one is computed again,
    and so is one holding a failed row when ``retry_failed``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    done = set()
    for shard in range(count):
        path = shard_path(out, shard)
        if path.is_file():
            try:
                pq.ParquetFile(path)
                if retry_failed and pc.any(pc.equal(pq.read_table(path, columns=["status"])["status"],
                                                    "failed")).as_py():
                    continue
            except Exception:  # noqa: BLE001 - unreadable: redo it
                continue
            done.add(shard)
    return done


def _validate(request: JobRequest, model) -> tuple[dict[str, Any], str]:
    """Options (seed added where a method takes one) and the layer; a dry run on a tiny input
    lets the library refuse unknown methods and bad option values with its own message."""
    if not request.methods:
        raise JobError("Give at least one method (--methods grad_cam,saliency).")
    options = dict(request.options)
    layer = request.layer or model.default_layer
    try:
        if any("seed" in options_for([m], {"seed": 0}) for m in request.methods):
            options.setdefault("seed", request.seed)
        unknown = sorted(set(options) - set(options_for(request.methods, options)))
        if unknown:
            raise JobError(f"Option(s) {', '.join(unknown)} are taken by none of {', '.join(request.methods)}.")
        probe = torch.zeros(1, 3, 64, 64)
        explainers.explain_many(model.net, probe, request.methods, [0], layer, **options | _cheap(options))
    except JobError:
        raise
    except ExplainerError as err:
        raise JobError(str(err)) from None
    except Exception:  # noqa: BLE001 - the tiny probe itself did not suit this model: the real run will say
        pass
    return options, layer


def _cheap(options: dict[str, Any]) -> dict[str, Any]:
    """Smaller sample / step counts for the dry run only (same names, so still validated)."""
    return {k: min(v, 2) for k, v in options.items()
            if k in ("samples", "steps", "max_steps") and isinstance(v, int) and not isinstance(v, bool)}


def plan(request: JobRequest) -> tuple[dict[str, Any], list[dict], Path]:
    """The manifest's plan, the items (with their index) and the resolved output directory."""
    if request.engine not in ("ray", "local"):
        raise JobError(f"--engine must be 'ray' or 'local', got {request.engine!r}.")
    for name, value, low in (("--shard-size", request.shard_size, 1), ("--batch-size", request.batch_size, 1),
                             ("--actors", request.actors, 1)):
        if not isinstance(value, int) or value < low:
            raise JobError(f"{name} must be a whole number >= {low}, got {value!r}.")
    out = Path(request.out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise JobError(f"{out} exists and is not a directory.")
    try:
        model = load_model({"name": request.model, "checkpoint": request.checkpoint,
                            "num_classes": request.num_classes})
    except ExplainerError as err:
        raise JobError(str(err)) from None
    targets = parse_targets(request.targets)
    options, layer = _validate(request, model)
    items = collect(request.source, path_column=request.path_column, label_column=request.label_column,
                    labels=model.labels)
    if targets["label"] and all(i["label"] is None for i in items):
        raise JobError("--targets label: the input has no labels (give a CSV/Parquet with a label column).")
    for index, item in enumerate(items):
        item["index"] = index
    listing = json.dumps(items, sort_keys=True).encode()
    checkpoint = str(Path(request.checkpoint).resolve()) if request.checkpoint else None
    manifest = {
        "format": FORMAT,
        "model": {"name": request.model, "checkpoint": checkpoint, "num_classes": request.num_classes,
                  "resolved_name": model.name, "description": model.description, "classes": len(model.labels),
                  "input_size": list(model.input_hw)},
        "fingerprint": fingerprint(model.net),
        "methods": list(dict.fromkeys(request.methods)),
        "options": options,
        "layer": layer,
        "targets": targets,
        "scores": {"enabled": request.scores, "steps": request.score_steps,
                   "replacement": request.score_replacement, "random_maps": request.score_random_maps},
        "seed": request.seed,
        "shard_size": request.shard_size,
        "inputs_sha256": hashlib.sha256(listing).hexdigest(),
        "images": len(items),
        "source": request.source,
    }
    return manifest, items, out


def worker_spec(manifest: dict[str, Any], batch_size: int, device: str) -> dict[str, Any]:
    keys = ("model", "fingerprint", "methods", "options", "layer", "targets", "scores", "seed")
    return {k: manifest[k] for k in keys} | {"batch_size": batch_size, "device": device}


def prepare_output(out: Path, manifest: dict[str, Any], items: list[dict], retry_failed: bool = False) -> set[int]:
    """Create or reopen ``out``; the set of finished shards (refuses a directory of another job)."""
    count = -(-len(items) // manifest["shard_size"])
    existing = out / "manifest.json"
    if existing.is_file():
        try:
            before = json.loads(existing.read_text())
        except (OSError, ValueError) as err:
            raise JobError(f"{existing} is unreadable ({err}); use another output directory.") from None
        if isinstance(before.get("model"), dict):  # an older manifest's one-number input size: the same square
            before["model"]["input_size"] = list(input_hw(before["model"]))
        differ = [k for k in PLAN_KEYS if before.get(k) != json.loads(json.dumps(manifest.get(k), default=str))]
        if differ:
            raise JobError(f"{out} holds another job (it differs in: {', '.join(differ)}). Use another --out "
                           "directory, or delete that one.")
        done = finished_shards(out, count, retry_failed)
    elif out.is_dir() and any(out.iterdir()):
        raise JobError(f"{out} is not empty and holds no job manifest: use an empty or new directory.")
    else:
        done = set()
    (out / "shards").mkdir(parents=True, exist_ok=True)
    _write_json(out / "inputs.json", items)
    return done


class Progress:
    """Counts, rate and ETA on the terminal (stderr), one line per finished shard."""

    def __init__(self, total: int, already: int, stream=None) -> None:
        self.total, self.done, self.failed = total, already, 0
        self.todo = total - already
        self.started = time.perf_counter()
        self.new = 0
        self.marks: list[tuple[float, int]] = []
        self.stream = stream or sys.stderr

    def update(self, images: int, failed: int) -> None:
        self.done += images
        self.new += images
        self.failed += failed
        elapsed = time.perf_counter() - self.started
        self.marks.append((elapsed, self.new))
        rate = self.new / elapsed if elapsed > 0 else 0.0
        left = self.todo - self.new
        eta = f"{left / rate:.0f} s" if rate > 0 else "?"
        print(f"[jobs] {self.done}/{self.total} images ({self.failed} failed) · {rate:.2f} images/s · ETA {eta}",
              file=self.stream, flush=True)


def _run_local(manifest: dict, shards: list[tuple[int, list[dict]]], request: JobRequest,
               write: Callable[[dict], None]) -> None:
    worker = ShardWorker(worker_spec(manifest, request.batch_size, "cuda" if torch.cuda.is_available() else "cpu"))
    pause = float(os.environ.get(SLOW_SHARD_ENV, "0") or 0)
    for shard, items in shards:
        write(worker.run_shard(shard, items))
        if pause:
            time.sleep(pause)


def _run_ray(manifest: dict, shards: list[tuple[int, list[dict]]], request: JobRequest,
             write: Callable[[dict], None]) -> None:
    import logging

    import ray
    import ray.data

    started_here = False
    if not ray.is_initialized():
        env = {"OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        if request.address:
            # Ship exactly the packages the workers import (not the checkout: no .venv, caches, results).
            runtime = {"py_modules": [str(ROOT / name) for name in WORKER_PACKAGES], "env_vars": env}
            ray.init(address=request.address, runtime_env=runtime, logging_level=logging.WARNING,
                     log_to_driver=False)
        else:
            # A local cluster for this job: one logical CPU more than the actors take, so the
            # dataset's own small tasks never wait behind them; a small object store.
            cpus = max(os.cpu_count() or 1, int(request.actors * request.cpus_per_actor + 0.999) + 1)
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, object_store_memory=request.object_store_mb * 2**20,
                     runtime_env={"env_vars": env | {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
                         "PYTHONPATH", "")]).rstrip(os.pathsep)}},
                     logging_level=logging.WARNING, log_to_driver=False, configure_logging=True)
        started_here = True
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        # Start explaining once every actor is up (so the shards spread over all of them), and fail
        # with a plain message, not a silent wait, when the cluster cannot host the pool.
        context.wait_for_min_actors_s = ACTOR_START_S
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notices (progress bars off, deprecations)
        gpus = request.gpus_per_actor
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= request.actors else 0.0
        threads = max(1, int(request.cpus_per_actor)) if request.address else \
            max(1, (os.cpu_count() or 1) // request.actors)
        spec = worker_spec(manifest, request.batch_size, "cuda" if gpus > 0 else "cpu")
        rows = [{"shard": shard, "items": json.dumps(items)} for shard, items in shards]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            ShardWorker, fn_constructor_kwargs={"spec": spec, "threads": threads}, batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=request.actors), num_cpus=request.cpus_per_actor, num_gpus=gpus,
            batch_format="numpy",
        )
        try:
            for batch in dataset.iter_batches(batch_size=1, batch_format="numpy", prefetch_batches=0):
                for i in range(len(batch["shard"])):
                    write({key: batch[key][i] for key in batch})
        except ray.exceptions.GetTimeoutError as err:
            raise JobError(f"{request.actors} actors ({request.cpus_per_actor} CPUs, {gpus} GPUs each) did not "
                           f"start within {ACTOR_START_S} s: does the cluster have the resources? ({err})") from None
    finally:
        if started_here:
            ray.shutdown()


def run_job(request: JobRequest, stream=None) -> Summary:
    """Plan, reopen or create the output, compute the missing shards, write the summary."""
    stream = stream or sys.stderr
    started = time.perf_counter()
    manifest, items, out = plan(request)
    done = prepare_output(out, manifest, items, request.retry_failed)
    size = manifest["shard_size"]
    shards = [(s, items[s * size:(s + 1) * size]) for s in range(-(-len(items) // size))]
    todo = [(s, chunk) for s, chunk in shards if s not in done]
    manifest |= {"status": "running", "engine": request.engine, "address": request.address,
                 "actors": request.actors if request.engine == "ray" else None, "batch_size": request.batch_size,
                 "versions": versions(request.engine), "started": datetime.now(UTC).isoformat()}
    _write_json(out / "manifest.json", manifest)
    print(f"[jobs] {len(items)} images in {len(shards)} shards; {len(done)} finished before, {len(todo)} to do "
          f"({request.engine}{f', {request.actors} actors' if request.engine == 'ray' else ''})", file=stream,
          flush=True)
    progress = Progress(len(items), sum(len(c) for s, c in shards if s in done), stream)

    def write(result: dict) -> None:
        path = shard_path(out, int(result["shard"]))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(bytes(result["data"]))
        os.replace(tmp, path)
        progress.update(int(result["images"]), int(result["failed"]))

    if todo:
        (_run_ray if request.engine == "ray" else _run_local)(manifest, todo, request, write)
    summary = summarise(out, len(shards), len(done), len(todo), progress.new, time.perf_counter() - started)
    summary.marks = progress.marks
    manifest |= {"status": "finished", "finished": datetime.now(UTC).isoformat(),
                 "summary": dataclasses.asdict(summary) | {"images_per_second": summary.rate}}
    _write_json(out / "manifest.json", manifest)
    return summary


def summarise(out: Path, shards: int, before: int, computed: int, images_computed: int, seconds: float) -> Summary:
    import pyarrow.parquet as pq

    columns = ["index", "name", "status", "error", "method"]
    tables = [pq.read_table(shard_path(out, s), columns=columns) for s in range(shards) if shard_path(out, s).is_file()]
    frame = [t.to_pandas() for t in tables]
    import pandas as pd

    rows = pd.concat(frame, ignore_index=True) if frame else pd.DataFrame(columns=columns)
    failed = rows[(rows["status"] == "failed") & rows["method"].isna()]
    disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return Summary(images=int(rows["index"].nunique()), failed=len(failed), rows=len(rows), shards=shards,
                   shards_done_before=before, shards_computed=computed, images_computed=images_computed, seconds=seconds,
                   failures=list(zip(failed["name"], failed["error"])), out=str(out), bytes_on_disk=disk)


def describe(summary: Summary) -> Iterable[str]:
    yield (f"[jobs] done: {summary.images} images, {summary.failed} failed, {summary.rows} rows; "
           f"{summary.shards_computed} shards computed, {summary.shards_done_before} already finished; "
           f"{summary.seconds:.1f} s ({summary.rate:.2f} images/s); {summary.bytes_on_disk / 2**20:.1f} MiB "
           f"in {summary.out}")
    for name, reason in summary.failures[:10]:
        yield f"[jobs]   failed: {name}: {reason}"
    if len(summary.failures) > 10:
        yield f"[jobs]   … and {len(summary.failures) - 10} more (rows with status 'failed')"
