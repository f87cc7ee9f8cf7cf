"""Evaluation on the bundled EfficientNet-Lite0 at 224x224, the "cat" sample, its predicted class.

1. ROAD of one Grad-CAM map at 4 percentiles (MoRF + LeRF: 8 imputations), ours against
   pytorch-grad-cam's ``ROADCombined([20, 40, 60, 80])`` on the same map (min-max normalised, as
   it expects) with ``ClassifierOutputSoftmaxTarget``. Goal: <= 0.8x.
2. Deletion + insertion of 8 methods' maps (k = 10) against one floor of 20 random maps on the
   7x7 layer grid, all in one call: 3 + 2 (k - 1) (8 + 20) = 507 rows. Reference: no-grad forwards
   of the same 507 rows (prepared beforehand, the same chunking, the same folded channels_last copy
   of the network: explainers.engine.image_forward). Goal: <= 1.2x. Beside it, the
   page's path when methods are added one by one: each method scored alone with the floor reused
   (8 calls of 21 rows each, plus the floor's 360 rows once), timed against the same reference.
"""

from __future__ import annotations

import torch
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

import explainers
import models
from bench.harness import Case
from bench.standalone import run_module
from evaluation.faithfulness import score_maps
from evaluation.methods import image_attributions, native_grid
from evaluation.road import road_scores
from explainers.engine import bytes_per_row, forward_in_chunks, image_forward, predict

METHODS_8 = 8
STEPS = 10
FLOOR = 20


def cases(quick: bool) -> list[Case]:
    model = models.load_image_model()
    net = model.net
    x = model.preprocess(models.load_sample("cat"))
    target = int(predict(net, x).argmax())
    cams = [m.name for m in explainers.methods("image") if m.shares_layer_pass][:METHODS_8]
    found = image_attributions(net, x, cams, target, model.default_layer)
    maps = {m: a.maps[0] for m, a in found.items()}
    grids = {m: native_grid(a) for m, a in found.items()}
    heat = maps["grad_cam"]
    normalised = ((heat - heat.min()) / (heat.max() - heat.min())).numpy()[None]
    reference_road = ROADCombined([20, 40, 60, 80])
    targets = [ClassifierOutputSoftmaxTarget(target)]

    rows = 3 + 2 * (STEPS - 1) * (len(maps) + FLOOR)
    inputs = x + 0.01 * torch.randn(rows, *x.shape[1:], generator=torch.Generator().manual_seed(0))
    folded, forward = image_forward(net)  # the forwards score_maps makes: the folded copy, its layout
    row_bytes = bytes_per_row(folded, tuple(x.shape[1:]), lambda: forward(x))

    def plain_forwards() -> None:
        forward_in_chunks(lambda a, b: forward(inputs[a:b]), rows, row_bytes, 1024.0)

    def together() -> None:
        score_maps(net, x, maps, target, steps=STEPS, random_maps=FLOOR, grids=grids)

    def one_by_one() -> None:
        floors = None
        for m in maps:
            scored = score_maps(net, x, {m: maps[m]}, target, steps=STEPS, random_maps=FLOOR, grids=grids,
                                floors=floors)
            floors = {scored[m].floor.grid: scored[m].floor}

    return [
        Case(
            "ROAD, one Grad-CAM map, 4 percentiles (MoRF + LeRF), EfficientNet-Lite0 224x224",
            {
                "pytorch-grad-cam ROADCombined": lambda: reference_road(x, normalised, targets, net),
                "ours: road_scores (random_maps=0)": lambda: road_scores(net, x, {"grad_cam": heat}, target,
                                                                          random_maps=0),
            },
            reference="pytorch-grad-cam ROADCombined",
            reps=3 if quick else 5,
            goals={"ours: road_scores (random_maps=0)": "<= 0.8x pytorch-grad-cam"},
            note="both impute the same 8 images by noisy linear imputation (noise 0.01); pytorch-grad-cam also runs "
                 "16 single-image forwards, ours one batch of 9.",
        ),
        Case(
            f"Deletion + insertion of {len(maps)} CAM maps, k={STEPS}, one floor of {FLOOR} random 7x7 maps",
            {
                f"no-grad forwards of the same {rows} rows": plain_forwards,
                "ours: score_maps, all maps in one call": together,
                "ours: one method at a time, floor reused": one_by_one,
            },
            reference=f"no-grad forwards of the same {rows} rows",
            reps=2 if quick else 4,
            goals={"ours: score_maps, all maps in one call": "<= 1.2x the forwards it needs"},
            note=f"one method at a time evaluates {len(maps)} x {2 * (STEPS - 1) + 3} + {2 * (STEPS - 1) * FLOOR} rows "
                 f"= {len(maps) * (2 * STEPS + 1) + 2 * (STEPS - 1) * FLOOR} (the floor once), against {rows} "
                 "in one call: about 1.04x by row count alone.",
        ),
    ]


def main() -> None:
    """``python -m bench.cases_evaluation [--quick]``: these cases alone, written to results/evaluation.md (+ .html)."""
    run_module("bench.cases_evaluation", "Evaluation benchmarks", cases, "evaluation.md")


if __name__ == "__main__":
    main()
