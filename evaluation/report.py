"""``python -m evaluation.report [--samples cat coffee] [--out PATH] [--merge A.json B.json]``: every method x every sample x metric.

Every image method of the registry that applies to the bundled model (the control records
excluded: the controls here are the evaluation's own) on every bundled sample, for the model's
predicted class: deletion AUC (grey fill), insertion AUC (from a blurred copy), ROAD combined
(4 percentiles) and the sanity check's rho at full randomisation, each with its verdict; then
per method the mean and standard deviation over the samples and how often it beat random
(failed the sanity check), and the controls' rows (the random floors' medians, the Sobel edge
map, the centred Gaussian). Rewritten after each sample, so a partial run leaves its rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import explainers
import models
from evaluation.controls import SOBEL, sobel_map
from evaluation.randomisation import sanity_check
from evaluation.scoring import score_methods
from explainers.engine import predict
from explainers.errors import ExplainerError

OUT = Path(__file__).resolve().parents[1] / "bench" / "results" / "evaluation_table.md"
METRICS = (("deletion", "deletion AUC (lower is better)"), ("insertion", "insertion AUC (higher is better)"),
           ("road", "ROAD combined (higher is better)"), ("sanity", "sanity rho (lower is better)"))
MARK = {"beats random": "✓", "passes": "✓", "no better than random": "✗", "fails": "✗", None: "–"}
PAGE_OPTIONS = {"seed": 0, "max_steps": 400}


def applicable(model: torch.nn.Module, x: torch.Tensor) -> list[str]:
    """The image methods (controls excluded) that run on this model; others are left out."""
    names = []
    for record in explainers.methods("image"):
        if record.family == "control" or not record.supports_image_model(model):
            continue
        if record.slow:  # many passes each; a slow method that does not fit fails in the run and says so
            names.append(record.name)
            continue
        try:  # on a 64 x 64 corner: quick, and enough to see whether the method fits the model
            explainers.explain(model, x[:, :, :64, :64], record.name)
        except (ExplainerError, RuntimeError):
            continue
        names.append(record.name)
    return names


def options_for(methods: list[str]) -> dict[str, dict]:
    return {m: {k: v for k, v in PAGE_OPTIONS.items() if k in explainers.method(m).options} for m in methods}


def cell(value: float, outcome: str | None) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.3f} {MARK[outcome]}"


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "", "✓ beats random (sanity: passes), ✗ no better than random (sanity: fails), – no verdict.", "",
             "## Per method: mean ± standard deviation over the samples, and verdict counts", "",
             "| method | " + " | ".join(t for _, t in METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        cells = []
        for metric, _ in METRICS:
            values = np.array([r[metric] for r in mine], dtype=float)
            verdicts = [r[f"{metric}_verdict"] for r in mine]
            good = sum(v in ("beats random", "passes") for v in verdicts)
            given = sum(v is not None for v in verdicts)
            if not np.isfinite(values).any():
                cells.append("n/a")
                continue
            word = "pass" if metric == "sanity" else "beat random"
            counts = f"{good}/{given} {word}" if given else "no verdict"
            cells.append(f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f} ({counts})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "## Every sample", "", "| sample | class (p) | method | " + " | ".join(t for _, t in METRICS) + " |",
              "|---|---|---|" + "---:|" * len(METRICS)]
    for r in rows:
        cells = [cell(r[m], r[f"{m}_verdict"]) for m, _ in METRICS]
        lines.append(f"| {r['sample']} | {r['label']} ({r['p']:.2f}) | {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sample_rows(model, name: str, methods: list[str], road_maps: int, sanity_methods: list[str]) -> list[dict]:
    x = model.preprocess(models.load_sample(name))
    probs = predict(model.net, x).softmax(-1)[0]
    target = int(probs.argmax())
    options = options_for(methods)
    started = time.time()
    scored = score_methods(model.net, x, methods, target, layer=model.default_layer, options=options,
                           road_options={"random_maps": road_maps})
    print(f"{name}: maps, deletion/insertion and ROAD in {time.time() - started:.0f} s", flush=True)
    trained = {m: scored.maps[m] for m in sanity_methods}
    sanity = sanity_check(model.net, x, sanity_methods, target, model.default_layer, options=options, trained=trained,
                          functions={SOBEL: lambda _m, image, _t: sobel_map(image).numpy()})
    common = {"sample": name, "label": model.labels[target], "p": float(probs[target])}
    rows = []
    for m, s in scored.faithfulness.items():
        road = scored.road[m]
        check = sanity.get(m)
        rows.append(common | {
            "method": explainers.method(m).label if m in methods else m,
            "deletion": s.deletion_auc, "deletion_verdict": s.verdicts["deletion"].outcome,
            "insertion": s.insertion_auc, "insertion_verdict": s.verdicts["insertion"].outcome,
            "road": road.combined, "road_verdict": road.verdict.outcome,
            "sanity": check.rho if check else float("nan"), "sanity_verdict": check.verdict.outcome if check else None,
        })
    floors = {s.floor.grid: (s.floor, scored.road[m].floor) for m, s in scored.faithfulness.items()}
    for grid, (floor, road_floor) in floors.items():
        where = "pixels" if grid is None else f"{grid[0]}x{grid[1]} cells"
        rows.append(common | {
            "method": f"control: random maps, median ({floor.count} for AUC, {road_floor.count} for ROAD; {where})",
            "deletion": float(np.median(floor.deletion_auc)), "deletion_verdict": None,
            "insertion": float(np.median(floor.insertion_auc)), "insertion_verdict": None,
            "road": float(np.median(road_floor.combined)), "road_verdict": None,
            "sanity": float("nan"), "sanity_verdict": None,
        })
    return rows


def header(model_name: str, rows: list[dict], runs: list[dict], total: int) -> str:
    """The table's description: settings, how many samples are in, and each run's machine and load."""
    first = runs[0]
    done = len({r["sample"] for r in rows})
    machine = "; ".join(f"{', '.join(r['samples'])}: {r['threads']} threads, load average {r['load']:.1f}, {r['seconds']:.0f} s"
                        for r in runs)
    return (
        f"# Evaluation table: {model_name}, every method on every bundled sample\n\n"
        f"`python -m evaluation.report`: the predicted class of each sample; deletion (k = 20 steps, fill: the "
        f"zero tensor, grey under TF scaling) and insertion (from a blurred copy, Gaussian sigma 5 px) AUCs of the "
        f"softmax probability; ROAD combined (noisy linear imputation, percentiles 20/40/60/80, noise 0.01); a "
        f"verdict says *beats random* only above the 95th percentile of 20 random maps ({first['road_maps']} for ROAD) "
        f"at the method's own resolution; the sanity check's rho is the mean |Spearman| between the trained model's "
        f"|map| and two fully randomised models' (fails above 0.5 or above their own rho + 0.2); sanity-checked: "
        f"{'every method' if first['sanity'] == 'all' else 'the methods that are not slow (n/a: not run)'}. Methods at "
        f"the pages' defaults (noise seed 0, adaptive IG at most 400 passes)"
        f"{'; left out: ' + ', '.join(first['skip']) if first['skip'] else ''}. {len(rows)} rows from {done} of "
        f"{total} samples; torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} CPUs shared; runs: {machine}."
    )


def merge(paths: list[Path], out: Path) -> None:
    """Render the rows that runs saved (``--out`` X.md saves X.json beside it) as one table."""
    saved = [json.loads(p.read_text()) for p in paths]
    rows = [r for s in saved for r in s["rows"]]
    runs = [run for s in saved for run in s["runs"]]
    out.write_text(markdown(rows, header(saved[0]["model"], rows, runs, len(models.sample_names()))))
    print(f"wrote {out} ({len(rows)} rows from {len(paths)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m evaluation.report", description=__doc__)
    parser.add_argument("--samples", nargs="*", default=None, help="default: every bundled sample")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--road-random-maps", type=int, default=20, help="random maps in the ROAD floor (default 20)")
    parser.add_argument("--sanity", choices=("all", "fast"), default="all",
                        help="sanity-check every method, or only those whose records are not slow (3 map sets each)")
    parser.add_argument("--skip", nargs="*", default=[], help="method names to leave out (named in the table's header)")
    parser.add_argument("--out", type=Path, default=OUT, help="the table (its rows are saved beside it as .json)")
    parser.add_argument("--merge", nargs="+", type=Path, default=None,
                        help="compute nothing: render the rows saved by these runs (.json) as one table in --out")
    args = parser.parse_args()
    if args.merge:
        merge(args.merge, args.out)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    model = models.load_image_model()
    started = time.time()
    samples = args.samples or models.sample_names()
    methods = [m for m in applicable(model.net, model.preprocess(models.load_sample(samples[0]))) if m not in args.skip]
    rows: list[dict] = []
    for name in samples:
        checked = methods if args.sanity == "all" else [m for m in methods if not explainers.method(m).slow]
        rows += sample_rows(model, name, methods, args.road_random_maps, checked)
        run = {"samples": list(dict.fromkeys(r["sample"] for r in rows)), "threads": args.threads,
               "load": os.getloadavg()[0], "seconds": time.time() - started, "road_maps": args.road_random_maps,
               "sanity": args.sanity, "skip": args.skip}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown(rows, header(model.name, rows, [run], len(models.sample_names()))))
        args.out.with_suffix(".json").write_text(json.dumps({"model": model.name, "rows": rows, "runs": [run]}))
        print(f"{name}: done at {time.time() - started:.0f} s", flush=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
