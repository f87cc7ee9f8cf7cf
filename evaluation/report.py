"""``python -m evaluation.report [--steps 20] [--samples cat coffee] [--out PATH]``: the AUC table.

Every image method (default options, noise seed 0) on every bundled sample, for the model's
predicted class, scored by :func:`evaluation.score_maps` with its defaults (grey/zero
replacement, softmax probability, 3 random 7x7 maps as the floor). Writes a Markdown table,
rewritten after each sample so a partial run still leaves its rows.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import explainers
import models
from evaluation.faithfulness import RANDOM_GRID, RANDOM_MAPS, score_maps
from evaluation.methods import image_maps
from explainers.engine import predict

OUT = Path(__file__).resolve().parents[1] / "bench" / "results" / "auc_table.md"


def markdown(rows: list[dict], header: str) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [header, "", "| sample | predicted class (p) | method | deletion AUC (lower is better) | insertion AUC (higher is better) | no better than random |",
             "|---|---|---|---:|---:|---|"]
    for r in rows:
        flag = "**yes**" if r["flag"] else ""
        lines.append(f"| {r['sample']} | {r['label']} ({r['p']:.2f}) | {r['method']} | {r['deletion']:.3f} | {r['insertion']:.3f} | {flag} |")
    lines += ["", "Mean over samples (and how often a method was no better than its sample's random floor):", "",
              "| method | mean deletion AUC | mean insertion AUC | flagged |", "|---|---:|---:|---:|"]
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        lines.append(f"| {m} | {np.mean([r['deletion'] for r in mine]):.3f} | {np.mean([r['insertion'] for r in mine]):.3f} "
                     f"| {sum(r['flag'] for r in mine)}/{len(mine)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m evaluation.report", description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--samples", nargs="*", default=None, help="default: every bundled sample")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ig-steps", type=int, default=50, help="Integrated Gradients steps (method default 50)")
    parser.add_argument("--noise-samples", type=int, default=25, help="SmoothGrad / Smooth Grad-CAM++ samples (default 25)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    noisy = {"seed": 0, "samples": args.noise_samples}
    options = {"smoothgrad": noisy, "smooth_grad_cam_plus_plus": noisy,
               "integrated_gradients": {"seed": 0, "steps": args.ig_steps}}
    model = models.load_image_model()
    started = time.time()
    rows: list[dict] = []
    for name in args.samples or models.sample_names():
        x = model.preprocess(models.load_sample(name))
        probs = predict(model.net, x).softmax(-1)[0]
        target = int(probs.argmax())
        maps = image_maps(model.net, x, explainers.names("image"), target, options=options)
        print(f"{name}: maps at {time.time() - started:.0f} s", flush=True)
        scores = score_maps(model.net, x, maps, target, steps=args.steps)
        common = {"sample": name, "label": model.labels[target], "p": float(probs[target])}
        for method, s in scores.items():
            rows.append(common | {"method": method, "deletion": s.deletion_auc, "insertion": s.insertion_auc,
                                  "flag": s.no_better_than_random})
        floor = next(iter(scores.values()))
        rows.append(common | {"method": f"random ({RANDOM_MAPS} maps, {RANDOM_GRID}x{RANDOM_GRID} cells)",
                              "deletion": floor.random_deletion_auc, "insertion": floor.random_insertion_auc,
                              "flag": False})
        load = os.getloadavg()
        header = (
            f"# Deletion / insertion AUC, {model.name}, every method on every bundled sample\n\n"
            f"`python -m evaluation.report` (k = {args.steps} steps, replacement: zero tensor = grey under TF scaling, "
            f"score: softmax probability of the predicted class, floor: {RANDOM_MAPS} random maps of 7x7 cells; methods at "
            f"default options except IG steps = {args.ig_steps}, SmoothGrad / Smooth Grad-CAM++ samples = "
            f"{args.noise_samples}, noise seed 0). "
            f"torch {torch.__version__}, {args.threads} threads, {platform.machine()}, {os.cpu_count()} CPUs shared, "
            f"load average {load[0]:.1f}, {time.time() - started:.0f} s so far."
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown(rows, header))
        print(f"{name}: done at {time.time() - started:.0f} s", flush=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
