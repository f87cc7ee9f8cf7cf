"""Image explainers against one forward, one forward+backward, pytorch-grad-cam and captum.

Models are torchvision architectures with random weights (no download; speed does not depend
on the weight values). Every variant that needs a target is given the same precomputed one,
except where the label says it includes the prediction.
"""

from __future__ import annotations

import torch
import torchvision
from captum.attr import IntegratedGradients, LayerGradCam, NoiseTunnel, Saliency
from pytorch_grad_cam import GradCAM

import explainers
from bench.harness import Case

METHODS_3 = ["cam", "grad_cam", "grad_cam_plus_plus"]


def _model(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.get_model(arch, weights=None).eval()


def _forward(model, x):
    def run():
        with torch.no_grad():
            return model(x)
    return run


def _forward_backward(model, x, target):
    """One ordinary forward + backward of the target logit (parameter gradients included)."""
    def run():
        model(x)[0, target].backward()
        model.zero_grad(set_to_none=True)
    return run


def grad_cam_case(quick: bool) -> Case:
    model, layer = _model("resnet50"), "layer4"
    x = torch.randn(1, 3, 224, 224)
    target = int(_forward(model, x)().argmax())
    pgc = GradCAM(model, [model.layer4])
    captum = LayerGradCam(model, model.layer4)
    return Case(
        "Grad-CAM, resnet50, B=1, 224x224",
        {
            "one forward (no grad)": _forward(model, x),
            "ours: explain grad_cam (incl. prediction)": lambda: explainers.explain(model, x, "grad_cam", None, layer),
            "pytorch-grad-cam GradCAM (incl. prediction)": lambda: pgc(x, targets=None),
            "captum LayerGradCam (target given)": lambda: captum.attribute(x, target=target, relu_attributions=True),
        },
        reference="one forward (no grad)",
        reps=5 if quick else 9,
        goals={"ours: explain grad_cam (incl. prediction)": "<= 1.1x one forward"},
        note="pytorch-grad-cam / ours = row ratio of pytorch-grad-cam divided by ours (goal >= 2.5).",
    )


def top5_case(quick: bool) -> Case:
    model, layer = _model("resnet50"), "layer4"
    x = torch.randn(1, 3, 224, 224)
    ranked = _forward(model, x)().topk(5, dim=1).indices[0].tolist()

    def one_at_a_time():
        for method in METHODS_3:
            for target in ranked:
                explainers.explain(model, x, method, target, layer)

    return Case(
        "CAM + Grad-CAM + Grad-CAM++ for the top-5 classes, resnet50, B=1",
        {
            "one forward + backward": _forward_backward(model, x, ranked[0]),
            "ours: explain_many, shared pass (incl. prediction)": lambda: explainers.explain_many(model, x, METHODS_3, layer=layer, top_k=5),
            "ours: 15 explain calls, one at a time": one_at_a_time,
        },
        reference="one forward + backward",
        reps=5 if quick else 7,
        goals={"ours: explain_many, shared pass (incl. prediction)": "<= 1.5x one forward+backward"},
    )


def gradient_cases(quick: bool) -> list[Case]:
    arch = "resnet18" if quick else "resnet50"
    model = _model(arch)
    x = torch.randn(1, 3, 224, 224)
    target = int(_forward(model, x)().argmax())
    steps, samples = 50, 25
    saliency = Saliency(model)
    tunnel = NoiseTunnel(Saliency(model))
    ig = IntegratedGradients(model)
    sigma = 0.15 * float(x.max() - x.min())
    reps = 3 if quick else 5
    return [
        Case(
            f"Saliency, {arch}, B=1",
            {
                "captum Saliency": lambda: saliency.attribute(x, target=target, abs=True),
                "ours: saliency": lambda: explainers.explain(model, x, "saliency", target),
            },
            reference="captum Saliency",
            reps=reps + 2,
        ),
        Case(
            f"SmoothGrad n={samples}, {arch}, B=1",
            {
                "captum NoiseTunnel(Saliency), one batch": lambda: tunnel.attribute(
                    x, nt_type="smoothgrad", nt_samples=samples, stdevs=sigma, target=target, abs=True),
                "ours: smoothgrad (default memory_mb)": lambda: explainers.explain(model, x, "smoothgrad", target, samples=samples),
            },
            reference="captum NoiseTunnel(Saliency), one batch",
            reps=reps,
        ),
        Case(
            f"Integrated Gradients {steps} steps (Gauss-Legendre), {arch}, B=1",
            {
                "captum IG, internal_batch_size=None (all steps at once)": lambda: ig.attribute(
                    x, target=target, n_steps=steps, method="gausslegendre"),
                "captum IG, internal_batch_size=10": lambda: ig.attribute(
                    x, target=target, n_steps=steps, method="gausslegendre", internal_batch_size=10),
                "captum IG, internal_batch_size=25": lambda: ig.attribute(
                    x, target=target, n_steps=steps, method="gausslegendre", internal_batch_size=25),
                "ours: integrated_gradients (default memory_mb)": lambda: explainers.explain(
                    model, x, "integrated_gradients", target, steps=steps),
            },
            reference="captum IG, internal_batch_size=None (all steps at once)",
            reps=reps,
            note="ours also runs one no-grad forward of input and baseline for the convergence delta.",
        ),
    ]


def cases(quick: bool) -> list[Case]:
    return [grad_cam_case(quick), top5_case(quick), *gradient_cases(quick)]
