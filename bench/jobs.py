"""Batch jobs: images per second for Grad-CAM, ``--engine local`` vs Ray Data with 1 and 2 actors.

``python -m bench.jobs [--images 200] [--out bench/results/jobs.md]``: copies of the bundled
samples (mirrored, flipped, rotated, cropped, so no two files are equal) are written to a
temporary folder as PNG, then explained by ``jobs.run_job`` with each engine into a fresh
output directory. Reported per engine: the whole job (plan, model load, Ray start-up, writing)
and the steady rate (images after the first shard / time from the first shard to the last),
with the load average before and after (``os.getloadavg``, as ``uptime`` shows it), and the
output's disk size per 1,000 images.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from PIL import ImageOps

import models
from jobs import JobRequest, run_job

RESULTS = Path(__file__).resolve().parent / "results"
ENGINES = [("local", 1), ("ray", 1), ("ray", 2)]


def sample_copies(folder: Path, count: int) -> None:
    """``count`` distinct PNGs made from the bundled samples (flips, rotations, crops)."""
    photos = [models.load_sample(n) for n in models.sample_names()]
    edits = [lambda p: p, ImageOps.mirror, ImageOps.flip, lambda p: p.rotate(90, expand=True),
             lambda p: p.rotate(270, expand=True)]
    for i in range(count):
        photo = photos[i % len(photos)]
        edit = edits[(i // len(photos)) % len(edits)]
        crop = (i // (len(photos) * len(edits))) * 8
        image = edit(photo)
        image = image.crop((crop, crop, image.width - crop, image.height - crop))
        image.save(folder / f"img_{i:04d}.png")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


def run(count: int, shard_size: int, batch_size: int, methods: list[str], engines=ENGINES) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        sample_copies(folder, count)
        for engine, actors in engines:
            out = Path(tmp) / f"out-{engine}-{actors}"
            before = load()
            started = time.perf_counter()
            summary = run_job(JobRequest(source=str(folder), out=str(out), methods=methods, engine=engine,
                                         actors=actors, shard_size=shard_size, batch_size=batch_size,
                                         object_store_mb=256))
            total = time.perf_counter() - started
            if summary.failed:  # these are good images: a failure is a broken setup, never a result
                raise SystemExit(f"{engine}: {summary.failed} images failed, e.g. {summary.failures[:3]}")
            (t0, n0), (t1, n1) = summary.marks[0], summary.marks[-1]
            steady = (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")
            rows.append({"engine": engine if engine == "local" else f"ray, {actors} actor{'s' * (actors > 1)}",
                         "images": summary.images, "failed": summary.failed, "total_s": total,
                         "rate": summary.images / total, "steady": steady, "first_shard_s": t0,
                         "load_before": before, "load_after": load(),
                         "mb_per_1000": summary.bytes_on_disk / summary.images * 1000 / 2**20})
            print(rows[-1], flush=True)
            shutil.rmtree(out)
    return rows


def markdown(rows: list[dict], args: argparse.Namespace, seconds: float) -> str:
    lines = [
        f"# Batch jobs: {', '.join(args.methods)} over {args.images} bundled-sample copies",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}, shards of {args.shard_size} images, batches of "
        f"{args.batch_size}, EfficientNet-Lite0 at 224x224, {seconds:.0f} s in all. Engines run one after the "
        "other on the same files; load average (1/5/15 min, as `uptime`) before and after each.",
        "",
        "| engine | images | whole job s | images/s (whole job) | images/s (steady) | until first shard s "
        "| load before | load after | output MiB per 1,000 images |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['engine']} | {r['images']} | {r['total_s']:.1f} | {r['rate']:.2f} | {r['steady']:.2f} | "
                     f"{r['first_shard_s']:.1f} | {r['load_before']} | {r['load_after']} | {r['mb_per_1000']:.0f} |")
    lines += ["", "Whole job: from the call to the summary (plan and probe, model load in each actor, Ray start-up "
              "and shut-down, writing). Steady: images after the first shard / time from the first shard written "
              "to the last. Local runs torch on all cores in one process; each Ray actor gets "
              "cores / actors threads.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs", description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--shard-size", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--methods", type=lambda s: s.split(","), default=["grad_cam"])
    parser.add_argument("--reverse", action="store_true", help="run the engines in the reverse order")
    parser.add_argument("--engines", type=lambda s: [(e.split(":")[0], int(e.split(":")[1]) if ":" in e else 1)
                                                     for e in s.split(",")], default=ENGINES,
                        help="e.g. local,ray:1,ray:2 (the default)")
    parser.add_argument("--out", type=Path, default=RESULTS / "jobs.md")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = run(args.images, args.shard_size, args.batch_size, args.methods, args.engines[::-1] if args.reverse else args.engines)
    text = markdown(rows, args, time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
