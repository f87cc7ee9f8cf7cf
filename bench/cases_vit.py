"""Vision transformers: Grad-CAM on torchvision's vit_b_16 and swin_t against one no-grad forward and
pytorch-grad-cam (given its reshape_transform; ours infers the token grid), and attention rollout.

Random weights (no download; speed does not depend on the weight values). Every variant includes
the prediction (target None), as a user's first map does.
"""

from __future__ import annotations

import torch
import torchvision
from pytorch_grad_cam import GradCAM

import explainers
from bench.harness import Case

VIT_LAYER = "encoder.layers.encoder_layer_11.ln_1"  # the automatic layer (explainers.layers)
SWIN_LAYER = "features.7.1.norm1"  # pytorch-grad-cam's Swin recommendation: the last block's first norm


def _model(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.get_model(arch, weights=None).eval()


def _forward(model, x):
    def run():
        with torch.no_grad():
            return model(x)
    return run


def _vit_reshape(tensor: torch.Tensor) -> torch.Tensor:
    return tensor[:, 1:, :].reshape(tensor.size(0), 14, 14, tensor.size(2)).permute(0, 3, 1, 2)


def _swin_reshape(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.permute(0, 3, 1, 2)


def grad_cam_case(arch: str, layer: str, reshape, quick: bool, goal: bool) -> Case:
    model = _model(arch)
    x = torch.randn(1, 3, 224, 224)
    pgc = GradCAM(model, [dict(model.named_modules())[layer]], reshape_transform=reshape)
    ours = "ours: explain grad_cam (incl. prediction)"
    return Case(
        f"Transformers: Grad-CAM, {arch}, B=1, 224x224, layer {layer}",
        {
            "one forward (no grad)": _forward(model, x),
            ours: lambda: explainers.explain(model, x, "grad_cam", None, layer),
            "pytorch-grad-cam GradCAM + reshape_transform (incl. prediction)": lambda: pgc(x, targets=None),
        },
        reference="one forward (no grad)",
        reps=5 if quick else 9,
        goals={ours: "<= 1.1x one forward", "pytorch-grad-cam GradCAM + reshape_transform (incl. prediction)":
               ">= 2x ours"} if goal else {},
    )


def rollout_case(quick: bool) -> Case:
    model = _model("vit_b_16")
    x = torch.randn(1, 3, 224, 224)
    return Case(
        "Transformers: attention rollouts, vit_b_16, B=1, 224x224",
        {
            "one forward (no grad)": _forward(model, x),
            "ours: attention_rollout (explicit attention probabilities)": lambda: explainers.explain(
                model, x, "attention_rollout"),
            "ours: gradient_rollout (forward + backward to every layer's attention)": lambda: explainers.explain(
                model, x, "gradient_rollout"),
        },
        reference="one forward (no grad)",
        reps=3 if quick else 5,
    )


def cases(quick: bool) -> list[Case]:
    return [grad_cam_case("vit_b_16", VIT_LAYER, _vit_reshape, quick, goal=True),
            grad_cam_case("swin_t", SWIN_LAYER, _swin_reshape, quick, goal=False),
            rollout_case(quick)]


def main() -> None:
    """``python -m bench.cases_vit [--quick]``: these cases alone, written to results/vit.md (+ .html), with
    pytorch-grad-cam's time over ours per case and the load average during the cases."""
    import os
    import platform
    import statistics
    import sys
    import time
    from pathlib import Path

    from bench.__main__ import write_chart
    from bench.harness import markdown, run_case

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(2)
    torch.manual_seed(0)
    started, rows, notes, loads = time.time(), [], [], []
    for case in cases("--quick" in sys.argv):
        print(f"== {case.name}", flush=True)
        loads.append(os.getloadavg()[0])
        case_rows = run_case(case)
        loads.append(os.getloadavg()[0])
        rows += case_rows
        by_label = {row.label: row for row in case_rows}
        ours = by_label.get("ours: explain grad_cam (incl. prediction)")
        theirs = by_label.get("pytorch-grad-cam GradCAM + reshape_transform (incl. prediction)")
        if ours and theirs:
            notes.append(f"- {case.name}: pytorch-grad-cam / ours = {theirs.ratio / ours.ratio:.2f} "
                         f"(median times {1000 * theirs.median_s:.0f} / {1000 * ours.median_s:.0f} ms).")
        for row in case_rows:
            print(f"   {row.label:<64} {1000 * row.median_s:9.1f} ms  x{row.ratio:.2f}", flush=True)
    header = (f"# Vision transformer benchmarks\n\n`python -m bench.cases_vit`: torch {torch.__version__}, 2 threads, "
              f"{platform.machine()}, {os.cpu_count()} CPUs shared with other jobs, load average "
              f"{min(loads):.1f}-{max(loads):.1f} (median {statistics.median(loads):.1f}) during the cases, "
              f"{time.time() - started:.0f} s. Same process, variants alternated (order rotated) in every rep; "
              "ratios are per-rep time / reference time.")
    out = Path(__file__).resolve().parent / "results" / "vit.md"
    out.write_text(markdown(rows, header, notes))
    write_chart(rows, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
