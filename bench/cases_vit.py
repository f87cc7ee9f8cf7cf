"""Vision transformers: Grad-CAM on torchvision's vit_b_16 and swin_t against one no-grad forward and
pytorch-grad-cam (given its reshape_transform; ours infers the token grid), and attention rollout.

Random weights (no download). torchvision zero-initialises ViT's head, which would make every
gradient zero; a zero gradient is free for our backward (frozen Linears skip zero rows of their
output gradient, :func:`explainers.capture.row_sparse_linears`), so zero-initialised linear layers are
re-drawn first, as a trained head is not zero. Speed does not otherwise depend on the weight values.
Every variant includes the prediction (target None), as a user's first map does.
"""

from __future__ import annotations

import torch
from pytorch_grad_cam import GradCAM

import explainers
from bench.cases_image import _forward, _model  # the bench's seeded random-weight model and its no-grad forward
from bench.harness import Case, Row
from bench.standalone import run_module

VIT_LAYER = "encoder.layers.encoder_layer_11.ln_1"  # the automatic layer (explainers.layers)
SWIN_LAYER = "features.7.1.norm1"  # pytorch-grad-cam's Swin recommendation: the last block's first norm
OURS = "ours: explain grad_cam (incl. prediction)"
THEIRS = "pytorch-grad-cam GradCAM + reshape_transform (incl. prediction)"


def _vit_reshape(tensor: torch.Tensor) -> torch.Tensor:
    return tensor[:, 1:, :].reshape(tensor.size(0), 14, 14, tensor.size(2)).permute(0, 3, 1, 2)


def _swin_reshape(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.permute(0, 3, 1, 2)


def _live_heads(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every all-zero linear layer (ViT's head) re-drawn N(0, 0.02^2), seeded."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and not module.weight.any():
                module.weight.copy_(0.02 * torch.randn(module.weight.shape, generator=generator))
    return model


def grad_cam_case(arch: str, layer: str, reshape, quick: bool, goal: bool) -> Case:
    model = _live_heads(_model(arch))
    x = torch.randn(1, 3, 224, 224)
    pgc = GradCAM(model, [dict(model.named_modules())[layer]], reshape_transform=reshape)
    return Case(
        f"Transformers: Grad-CAM, {arch}, B=1, 224x224, layer {layer}",
        {
            "one forward (no grad)": _forward(model, x),
            OURS: lambda: explainers.explain(model, x, "grad_cam", None, layer),
            THEIRS: lambda: pgc(x, targets=None),
        },
        reference="one forward (no grad)",
        reps=5 if quick else 9,
        goals={OURS: "<= 1.1x one forward", THEIRS: ">= 2x ours"} if goal else {},
    )


def rollout_case(quick: bool) -> Case:
    model = _live_heads(_model("vit_b_16"))
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


def ratio_to_ours(case: Case, rows: list[Row]) -> list[str]:
    """pytorch-grad-cam's time over ours in a Grad-CAM case (no line for the other cases)."""
    by_label = {row.label: row for row in rows}
    ours, theirs = by_label.get(OURS), by_label.get(THEIRS)
    if not (ours and theirs):
        return []
    return [f"- {case.name}: pytorch-grad-cam / ours = {theirs.ratio / ours.ratio:.2f} "
            f"(median times {1000 * theirs.median_s:.0f} / {1000 * ours.median_s:.0f} ms)."]


def main() -> None:
    """``python -m bench.cases_vit [--quick]``: these cases alone, written to results/vit.md (+ .html), with
    pytorch-grad-cam's time over ours per case and the load average during the cases."""
    run_module("bench.cases_vit", "Vision transformer benchmarks", cases, "vit.md", ratio_to_ours)


if __name__ == "__main__":
    main()
