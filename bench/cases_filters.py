"""Activation maximisation on the bundled EfficientNet-Lite0 at 224x224: several channels optimised
together in one batch against the same channels one run at a time.

Channels per second = channels / median time of the row. Goal: batching >= 3x, i.e. the batched
row at <= 0.33 of the one-at-a-time reference; 128x128 (the page's default) for context. Also
feature maps (both sorts) against one forward.
"""

from __future__ import annotations

import torch

import explainers
import models
from bench.harness import Case

CHANNELS = [0, 1, 2, 3, 4, 5, 6, 7]


def _maximise_case(model, layer: str, steps: int, reps: int, size: int = 224) -> Case:
    options = dict(size=size, steps=steps, mean=model.normalisation.mean, std=model.normalisation.std)

    def batched():
        explainers.maximise_activation(model.net, layer, CHANNELS, **options)

    def one_at_a_time():
        for channel in CHANNELS:
            explainers.maximise_activation(model.net, layer, [channel], **options)

    return Case(
        f"Activation maximisation, {len(CHANNELS)} channels of {layer}, {steps} steps, {size}x{size}, lite0",
        {"one channel per run (8 runs)": one_at_a_time, "8 channels in one batched run": batched},
        reference="one channel per run (8 runs)",
        reps=reps,
        warmup=0 if reps < 3 else 1,
        goals={"8 channels in one batched run": "<= 0.33 (batching >= 3x)"},
        note=f"channels/s = {len(CHANNELS)} / median s; forward stops at the layer. Batching pays on a CPU only "
        "as far as per-call overhead does: run with OMP_WAIT_POLICY=PASSIVE on a loaded machine, otherwise "
        "OpenMP's spinning threads make every batch-1 op far slower and inflate the batching gain.",
    )


def _feature_maps_case(model, reps: int) -> Case:
    x = model.preprocess(models.load_sample("cat"))

    def forward():
        with torch.no_grad():
            model.net(x)

    return Case(
        "Feature maps of _head_act, B=1, 224x224, lite0",
        {
            "one forward (no grad)": forward,
            "feature_maps sort=mean": lambda: explainers.feature_maps(model.net, x, "_head_act"),
            "feature_maps sort=grad_cam": lambda: explainers.feature_maps(model.net, x, "_head_act", "grad_cam"),
        },
        reference="one forward (no grad)",
        reps=reps,
    )


def cases(quick: bool):
    model = models.load_image_model("efficientnet_lite0")
    yield _feature_maps_case(model, 5 if quick else 15)
    yield _maximise_case(model, "_blocks.5", 2 if quick else 8, 2 if quick else 5)
    yield _maximise_case(model, "_head_act", 2 if quick else 8, 2 if quick else 5)
    yield _maximise_case(model, "_head_act", 2 if quick else 8, 2 if quick else 5, size=128)
