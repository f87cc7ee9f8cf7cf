"""Adaptive IG vs fixed 50-step captum: forward+backward passes needed for an equal or smaller delta.

``python -m bench.adaptive_ig [--out bench/results/adaptive_ig.md]``: on the bundled
EfficientNet-Lite0, every bundled photo and the zero and black baselines, captum's
IntegratedGradients (50 Gauss-Legendre steps) gives a completeness delta; ours is then run with
``tolerance`` = that delta relative to |f(x) - f(x')| and its passes are counted
(``extras["steps"]``). Also listed: the passes ours needs for the dashboard's default 1%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from captum.attr import IntegratedGradients

import explainers
import models

RESULTS = Path(__file__).resolve().parent / "results"
CAPTUM_STEPS = 50


def run(max_steps: int = 800) -> tuple[list[dict], float]:
    lite = models.load_image_model()
    black = lite.to_tensor(np.zeros((1, 1, 3), dtype=np.uint8))
    reference = IntegratedGradients(lite.net)
    rows, started = [], time.time()
    for baseline in ("zero", "black"):
        for name in models.sample_names():
            x = lite.preprocess(models.load_sample(name))
            start = torch.zeros_like(x) if baseline == "zero" else black.expand_as(x)
            target = int(lite.net(x).argmax())
            attr, delta = reference.attribute(x, start, target=target, n_steps=CAPTUM_STEPS, method="gausslegendre",
                                              return_convergence_delta=True)
            with torch.no_grad():
                change = float(lite.net(x)[0, target] - lite.net(start)[0, target])
            captum_rel = abs(float(delta)) / abs(change)
            options = {"baseline": baseline, "black": black[0, :, 0, 0].tolist(), "max_steps": max_steps}
            matched = explainers.explain(lite.net, x, "integrated_gradients", target, tolerance=captum_rel, **options)
            one_percent = explainers.explain(lite.net, x, "integrated_gradients", target, tolerance=0.01, **options)
            rows.append({
                "baseline": baseline, "photo": name, "captum_delta": captum_rel,
                "passes": int(matched.extras["steps"][0]), "delta": abs(float(matched.extras["delta"][0])) / abs(change),
                "passes_1pct": int(one_percent.extras["steps"][0]),
                "delta_1pct": abs(float(one_percent.extras["delta"][0])) / abs(change),
            })
            print(rows[-1], flush=True)
    return rows, time.time() - started


def markdown(rows: list[dict], seconds: float) -> str:
    ratios = [CAPTUM_STEPS / r["passes"] for r in rows]
    met = sum(r >= 2 for r in ratios)
    load = os.getloadavg()
    lines = [
        "# Adaptive IG: passes for captum's 50-step delta",
        "",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load[0]:.1f} when written, "
        f"{seconds:.0f} s. Bundled EfficientNet-Lite0, target = predicted class, delta relative to |f(x) - f(x')|. "
        "captum: IntegratedGradients, 50 Gauss-Legendre steps (50 passes). Ours: `tolerance` = captum's relative "
        "delta, trapezoid panels bisected where their completeness error is largest.",
        "",
        "| baseline | photo | captum delta (50 passes) | ours: passes | ours: delta | fewer passes | ours to 1%: passes | delta |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r, ratio in zip(rows, ratios):
        lines.append(f"| {r['baseline']} | {r['photo']} | {r['captum_delta']:.2%} | {r['passes']} | {r['delta']:.2%} | "
                     f"{ratio:.1f}x | {r['passes_1pct']} | {r['delta_1pct']:.2%} |")
    quartiles = statistics.quantiles(ratios, n=4, method="inclusive")
    lines += [
        "",
        f"Fewer passes than captum at an equal or smaller delta: median **{statistics.median(ratios):.1f}x** "
        f"(quartiles {quartiles[0]:.1f}x-{quartiles[2]:.1f}x, range {min(ratios):.1f}x-{max(ratios):.1f}x); "
        f">= 2x on {met} of {len(rows)} cases (goal: >= 2x).",
        f"Passes to reach the default 1%: median {statistics.median(r['passes_1pct'] for r in rows):.0f} "
        f"(range {min(r['passes_1pct'] for r in rows)}-{max(r['passes_1pct'] for r in rows)}); captum's 50 steps reach "
        f"1% on {sum(r['captum_delta'] <= 0.01 for r in rows)} of {len(rows)}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.adaptive_ig", description=__doc__)
    parser.add_argument("--out", type=Path, default=RESULTS / "adaptive_ig.md")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows, seconds = run()
    args.out.write_text(markdown(rows, seconds))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
