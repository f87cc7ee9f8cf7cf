"""The bundled model's gradient copy with its functional BatchNorms folded, against the copy without.

EfficientNet-Lite0's convolutions are ``Conv2dStaticSamePadding`` modules whose own forward calls
``F.conv2d``: ``torch.fx``'s ``fuse`` does not see them, so their 49 BatchNorms stayed until
:func:`explainers.folded.fold_functional`. Two copies of the bundled network are prepared, one as
:func:`explainers.folded.gradient_net` builds it now and one with ``fold_functional`` switched off
while its copy is built (channels_last and ``fuse`` as before), and timed alternately in one process:
a forward + gradient to the input on a batch of 10 (the unit the module docstring quotes), and what
the Images page does for SmoothGrad, Integrated Gradients and occlusion on the cat at its defaults.
"""

from __future__ import annotations

import copy
from unittest import mock

import torch

import explainers
import explainers.folded as folded
from bench.harness import Case
from bench.standalone import run_module
from models import load_image_model
from models.samples import load_sample

NOW, BEFORE = "functional BatchNorms folded (now)", "functional BatchNorms kept (before)"


def copies() -> tuple[dict[str, torch.nn.Module], torch.Tensor]:
    """Two copies of the bundled network (each with its own cached gradient copy) and the cat's input."""
    bundled = load_image_model()
    nets = {NOW: copy.deepcopy(bundled.net).eval(), BEFORE: copy.deepcopy(bundled.net).eval()}
    folded.gradient_net(nets[NOW])
    with mock.patch.object(folded, "fold_functional", lambda net: 0):
        folded.gradient_net(nets[BEFORE])
    return nets, bundled.preprocess(load_sample("cat"))


def cases(quick: bool) -> list[Case]:
    nets, x = copies()
    batch = x.repeat(10, 1, 1, 1).contiguous(memory_format=torch.channels_last)

    def step(net: torch.nn.Module) -> None:
        grad_net = folded.gradient_net(net)
        inputs = batch.clone().requires_grad_(True)
        grad_net(inputs)[:, 281].sum().backward()

    def page(name: str, options: dict):
        return {label: (lambda net=net: explainers.explain(net, x, name, 281, **options)) for label, net in nets.items()}

    reps = 5 if quick else 9
    return [
        Case("Bundled EfficientNet-Lite0: forward + gradient to the input, batch 10 at 224 x 224",
             {label: (lambda net=net: step(net)) for label, net in nets.items()}, reference=BEFORE, reps=reps, warmup=2,
             goals={NOW: "< 1x"}),
        Case("Images page, the cat: SmoothGrad (25 samples, noise 0.15)", page("smoothgrad", {"samples": 25}),
             reference=BEFORE, reps=reps, warmup=1),
        Case("Images page, the cat: Integrated Gradients (adaptive, delta <= 1 %)",
             page("integrated_gradients", {"tolerance": 0.01}), reference=BEFORE, reps=reps, warmup=1),
        Case("Images page, the cat: occlusion (window 16, stride 8; incremental)",
             page("occlusion", {"window": 16, "stride": 8}), reference=BEFORE, reps=3 if quick else 5, warmup=1),
    ]


def main() -> None:
    """``python -m bench.cases_folded [--quick]``: written to results/folded-functional.md (+ .html)."""
    run_module("bench.cases_folded", "Folding the bundled model's functional BatchNorms", cases, "folded-functional.md")


if __name__ == "__main__":
    main()
