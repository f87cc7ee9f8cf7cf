"""``python -m jobs IMAGES --methods M1,M2 --out DIR [...]``: explain every image, write sharded Parquet.

IMAGES is a folder, a glob (quote it), a .zip, or a .csv/.parquet table with a path column (and
optionally a label column). A user mistake prints ``error: ...`` and exits with 2; images that
cannot be read are recorded in the output with their reason and never stop the job.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _option(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--option takes NAME=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return name.strip(), parsed


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jobs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", help="folder, glob, .zip, or .csv/.parquet of paths (optional labels)")
    p.add_argument("--out", required=True, help="output directory (rerun with the same one to resume)")
    p.add_argument("--methods", required=True, help="comma-separated method names, e.g. grad_cam,saliency")
    p.add_argument("--option", "-o", action="append", type=_option, default=[], metavar="NAME=VALUE",
                   help="a method option (JSON value), given to every method that takes it; repeatable")
    p.add_argument("--model", default="efficientnet_lite0",
                   help="bundled model, or torchvision:ARCH with --checkpoint (default: %(default)s)")
    p.add_argument("--checkpoint", help=".safetensors or .pt/.pth state_dict for a torchvision architecture")
    p.add_argument("--num-classes", type=int, help="class count of the checkpoint (default: read from it)")
    p.add_argument("--layer", help="target layer of the CAM family (default: the model's)")
    p.add_argument("--targets", default="predicted", help="predicted | top-K | label, comma-separated "
                                                           "(default: %(default)s)")
    p.add_argument("--path-column", default="path", help="a table's image path column (default: %(default)s)")
    p.add_argument("--label-column", default="label", help="a table's label column (default: %(default)s)")
    p.add_argument("--scores", action="store_true", help="deletion/insertion AUC of every map (slower)")
    p.add_argument("--score-steps", type=int, default=20)
    p.add_argument("--score-replacement", default="zero", help="zero | blur | black | uniform")
    p.add_argument("--score-random-maps", type=int, default=3, help="random maps for the floor (0: none)")
    p.add_argument("--seed", type=int, default=0, help="seed for every method that takes one (default 0)")
    p.add_argument("--shard-size", type=int, default=32, help="images per Parquet shard (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=8, help="images per model batch (default %(default)s)")
    p.add_argument("--engine", choices=["ray", "local"], default="ray",
                   help="ray: a Ray Data actor pool (default); local: in this process, no Ray")
    p.add_argument("--address", help="an existing Ray cluster (e.g. ray://head:10001 or auto); default: "
                                     "a local Ray started for this job")
    p.add_argument("--actors", type=int, default=2, help="actors in the pool (default %(default)s)")
    p.add_argument("--cpus-per-actor", type=float, default=1.0)
    p.add_argument("--gpus-per-actor", type=float, help="default: 1 when the cluster has a GPU per actor, else 0")
    p.add_argument("--retry-failed", action="store_true",
                   help="on a rerun, compute again the finished shards that hold failed rows")
    p.add_argument("--object-store-mb", type=int, default=256, help="local Ray's object store (default %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from jobs.engine import JobRequest, describe, run_job
    from jobs.inputs import JobError

    request = JobRequest(
        source=args.images, out=args.out, methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        model=args.model, checkpoint=args.checkpoint, num_classes=args.num_classes, options=dict(args.option),
        layer=args.layer, targets=args.targets, path_column=args.path_column, label_column=args.label_column,
        scores=args.scores, score_steps=args.score_steps, score_replacement=args.score_replacement,
        score_random_maps=args.score_random_maps, seed=args.seed, shard_size=args.shard_size,
        batch_size=args.batch_size, engine=args.engine, address=args.address, actors=args.actors,
        cpus_per_actor=args.cpus_per_actor, gpus_per_actor=args.gpus_per_actor, object_store_mb=args.object_store_mb,
        retry_failed=args.retry_failed,
    )
    try:
        summary = run_job(request)
    except JobError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in describe(summary):
        print(line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
