"""Deletion + insertion curves against plain forwards, on the bundled EfficientNet-Lite0 at 224x224.

One Grad-CAM map at k = 20 steps needs 2k = 40 images (the fully kept and fully replaced images
are shared by both curves), built and run as batched no-grad forwards. Reference: two no-grad
forwards of a batch of 20 images (the same 40 images' worth of network work). Goal: <= 1.2x.
The default random floor (3 random maps) adds 3 x 38 images and is shown beside, without a goal.
"""

from __future__ import annotations

import torch

import evaluation
import explainers
import models
from bench.harness import Case


def cases(quick: bool) -> list[Case]:
    model = models.load_image_model()
    net = model.net
    x = model.preprocess(models.load_sample("cat"))
    target = int(explainers.engine.predict(net, x).argmax())
    heat = explainers.explain(net, x, "grad_cam", target).maps[0]
    batch = x.repeat(20, 1, 1, 1) + 0.01 * torch.randn(20, *x.shape[1:], generator=torch.Generator().manual_seed(0))

    def two_forwards() -> None:
        with torch.no_grad():
            net(batch)
            net(batch)

    return [
        Case(
            "Deletion + insertion, one map, k=20, EfficientNet-Lite0 224x224",
            {
                "two no-grad forwards of a batch of 20": two_forwards,
                "ours: score_map, curves only (random_maps=0)": lambda: evaluation.score_map(
                    net, x, heat, target, steps=20, random_maps=0),
                "ours: score_map with the default floor (3 random maps)": lambda: evaluation.score_map(
                    net, x, heat, target, steps=20),
            },
            reference="two no-grad forwards of a batch of 20",
            reps=3 if quick else 7,
            goals={"ours: score_map, curves only (random_maps=0)": "<= 1.2x two forwards of 20"},
            note="the floor variant evaluates 40 + 3 x 38 = 154 images: about 3.9x by image count alone.",
        )
    ]
