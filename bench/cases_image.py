"""Image explainers against one forward, one forward+backward, pytorch-grad-cam and captum.

Models are torchvision architectures with random weights (no download; speed does not depend
on the weight values). Every variant that needs a target is given the same precomputed one,
except where the label says it includes the prediction.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

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


def _fastest(label: str, options: dict[str, Callable[[], object]], runs: int) -> tuple[str, Callable[[], object]]:
    """The fastest of ``options`` (median of ``runs`` timings each, after one warm-up), as a labelled variant."""
    timings = {}
    for name, run in options.items():
        run()
        timings[name] = statistics.median(_timed(run) for _ in range(runs))
    best = min(timings, key=timings.get)
    return f"{label}, best {best} (of {', '.join(options)})", options[best]


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def gradient_cases(quick: bool) -> list[Case]:
    """Saliency, SmoothGrad and IG on resnet50 (B=1, 224x224), against captum at its default and at
    its best internal batch size (found by a sweep in this process just before the case)."""
    model = _model("resnet50")
    x = torch.randn(1, 3, 224, 224)
    target = int(_forward(model, x)().argmax())
    steps, samples = 50, 25
    saliency = Saliency(model)
    tunnel = NoiseTunnel(Saliency(model))
    ig = IntegratedGradients(model)
    sigma = 0.15 * float(x.max() - x.min())
    reps, sweep = (3, 1) if quick else (5, 2)
    sg_batches, ig_batches = ((10, samples), (10, 25)) if quick else ((5, 10, samples), (5, 10, 25, steps))

    def smoothgrad_captum(batch: int | None) -> Callable[[], object]:
        return lambda: tunnel.attribute(x, nt_type="smoothgrad", nt_samples=samples, stdevs=sigma, target=target,
                                        abs=True, nt_samples_batch_size=batch)

    def ig_captum(batch: int | None) -> Callable[[], object]:
        return lambda: ig.attribute(x, target=target, n_steps=steps, method="gausslegendre", internal_batch_size=batch,
                                    return_convergence_delta=True)

    sg_best = _fastest("captum NoiseTunnel", {f"batch {b}": smoothgrad_captum(b) for b in sg_batches}, sweep)
    ig_best = _fastest("captum IG", {f"batch {b}": ig_captum(b) for b in ig_batches}, sweep)
    # captum at its default batch (all steps at once): 1.9x its best on resnet50, 14 s a run; full runs only
    ig_default = {} if quick else {"captum IG, default (internal_batch_size=None)": ig_captum(None)}
    return [
        Case(
            "Saliency, resnet50, B=1",
            {
                "captum Saliency": lambda: saliency.attribute(x, target=target, abs=True),
                "ours: saliency": lambda: explainers.explain(model, x, "saliency", target),
            },
            reference="captum Saliency",
            reps=reps + 2,
        ),
        Case(
            f"SmoothGrad n={samples}, resnet50, B=1",
            {
                sg_best[0]: sg_best[1],
                "captum NoiseTunnel, default (all samples in one batch)": smoothgrad_captum(None),
                "ours: smoothgrad (default memory_mb)": lambda: explainers.explain(model, x, "smoothgrad", target, samples=samples),
            },
            reference=sg_best[0],
            reps=reps,
            goals={"ours: smoothgrad (default memory_mb)": "<= 0.9x captum's best"},
            note="ours runs on the network's folded channels_last copy (explainers.folded; built once and cached, "
                 "so the warm-up pays for it).",
        ),
        Case(
            f"Integrated Gradients {steps} steps (Gauss-Legendre), resnet50, B=1",
            {
                ig_best[0]: ig_best[1],
                **ig_default,
                "ours: integrated_gradients, fixed steps (tolerance=0)": lambda: explainers.explain(
                    model, x, "integrated_gradients", target, steps=steps, tolerance=0),
            },
            reference=ig_best[0],
            reps=reps,
            goals={"ours: integrated_gradients, fixed steps (tolerance=0)": "<= 0.9x captum's best"},
            note="both compute the convergence delta (captum: return_convergence_delta=True; ours: one no-grad "
                 "forward of input and baseline); ours runs on the folded channels_last copy.",
        ),
    ]


def fast_mode_case(quick: bool) -> Case:
    """Fast mode (bfloat16 autocast) against exact float32 on the bundled model: time and error."""
    import models

    lite = models.load_image_model()
    x = lite.preprocess(models.load_sample("cat"))
    options = {"samples": 2 if quick else 8, "seed": 0}
    exact = explainers.explain(lite.net, x, "smoothgrad", None, **options)
    fast = explainers.explain(lite.net, x, "smoothgrad", None, precision="bfloat16", **options)
    pixel_error = float((fast.pixel - exact.pixel).norm() / exact.pixel.norm())
    map_error = float((fast.maps - exact.maps).norm() / exact.maps.norm())
    return Case(
        f"Fast mode: SmoothGrad n={options['samples']}, EfficientNet-Lite0 (bundled), cat photo, B=1",
        {
            "ours: smoothgrad, float32 (exact mode)": lambda: explainers.explain(lite.net, x, "smoothgrad", None, **options),
            "ours: smoothgrad, precision=bfloat16 (fast mode)": lambda: explainers.explain(
                lite.net, x, "smoothgrad", None, precision="bfloat16", **options),
        },
        reference="ours: smoothgrad, float32 (exact mode)",
        reps=3 if quick else 5,
        goals={"ours: smoothgrad, precision=bfloat16 (fast mode)": "<= 0.5x captum's best (i.e. ~0.6x exact)"},
        note=f"error of fast mode vs exact: relative L2 {pixel_error:.3f} per pixel, {map_error:.3f} on the map. "
             f"CPU capability {torch.backends.cpu.get_cpu_capability()}: bfloat16 is emulated without AVX512-BF16/AMX.",
    )


def cases(quick: bool) -> list[Case]:
    return [grad_cam_case(quick), top5_case(quick), *gradient_cases(quick), fast_mode_case(quick)]
