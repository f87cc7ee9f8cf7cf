"""The CAM methods added with the registry against pytorch-grad-cam 1.5.7, and input x gradient /
VarGrad against captum (test-only oracles).

Two torchvision architectures with trained-looking weights, a batch of 3 with a different target
per item, non-square input; raw maps (pytorch-grad-cam's ReLU'd map before its min-max scaling)
must agree to a relative error <= 1e-4. Score-CAM and Ablation-CAM make one forward per channel,
so they run on a smaller input (still non-square).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import InputXGradient, Saliency
from pytorch_grad_cam import AblationCAM, EigenCAM, EigenGradCAM, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection, get_2d_projection_with_sign_correction

import explainers
from explainers.engine import noise_generator, noisy_inputs
from explainers.folded import gradient_net
from tests.test_explainers_support import TARGETS, relative_error, sample_batch, trained_looking

TOLERANCE = 1e-4
TINY = (3, 3, 48, 64)  # Score-CAM / Ablation-CAM: one forward per channel and item
ARCHS = {"resnet18": "layer4", "mobilenet_v2": "features.18"}


@pytest.fixture(scope="module", params=list(ARCHS))
def setup(request):
    model = trained_looking(request.param)
    layer = ARCHS[request.param]
    return model, dict(model.named_modules())[layer], layer


def oracle_raw(cls, model, module, x, **kwargs) -> tuple[torch.Tensor, np.ndarray, np.ndarray | None]:
    """pytorch-grad-cam's map for TARGETS before its min-max scaling (with its ReLU), and A, G."""
    cam = cls(model, [module], **kwargs)
    try:
        outputs = cam.activations_and_grads(x)
        targets = [ClassifierOutputTarget(t) for t in TARGETS]
        if cam.uses_gradients:
            sum(t(o) for t, o in zip(targets, outputs)).backward()
        activations = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy() if cam.uses_gradients else None
        raw = cam.get_cam_image(x, module, targets, activations, grads, eigen_smooth=False)
    finally:
        cam.activations_and_grads.release()
    return torch.from_numpy(np.maximum(raw, 0)), activations, grads


@pytest.mark.parametrize(("name", "cls"), [("hirescam", HiResCAM), ("xgrad_cam", XGradCAM), ("layer_cam", LayerCAM)])
def test_gradient_cams_match_pytorch_grad_cam(setup, name, cls) -> None:
    model, module, layer = setup
    x = sample_batch()
    ours = explainers.explain(model, x, name, TARGETS, layer)
    theirs, _, _ = oracle_raw(cls, model, module, x)
    assert theirs.amax(dim=(1, 2)).min() > 0, "a non-degenerate reference"
    assert relative_error(ours.raw, theirs) <= TOLERANCE
    assert ours.targets == TARGETS and ours.maps.shape == x.shape[:1] + x.shape[2:]


@pytest.mark.parametrize(("name", "cls", "uses"), [("eigen_cam", EigenCAM, "a"), ("eigen_grad_cam", EigenGradCAM, "ga")])
def test_eigen_cams_match_pytorch_grad_cam_with_its_sign_correction(setup, name, cls, uses) -> None:
    """The SVD's sign is arbitrary; ours fixes it as pytorch-grad-cam's
    get_2d_projection_with_sign_correction does. Up to that sign, it is EigenCAM's own projection."""
    model, module, layer = setup
    x = sample_batch()
    ours = explainers.explain(model, x, name, TARGETS, layer)
    _, activations, grads = oracle_raw(cls, model, module, x)
    source = activations if uses == "a" else grads * activations
    corrected = torch.from_numpy(get_2d_projection_with_sign_correction(source)).clamp_min(0)
    assert relative_error(ours.raw, corrected) <= TOLERANCE
    plain = torch.from_numpy(get_2d_projection(source))
    for item in range(x.shape[0]):
        assert min(relative_error(ours.raw[item : item + 1], plain[item : item + 1].clamp_min(0)),
                   relative_error(ours.raw[item : item + 1], (-plain[item : item + 1]).clamp_min(0))) <= TOLERANCE


def test_eigen_cam_is_the_same_for_every_class(setup) -> None:
    model, _, layer = setup
    x = sample_batch(3, TINY)
    a = explainers.explain(model, x, "eigen_cam", 1, layer).raw
    b = explainers.explain(model, x, "eigen_cam", 7, layer).raw
    torch.testing.assert_close(a, b)
    assert explainers.method("eigen_cam").target_independent


def test_score_cam_matches_pytorch_grad_cam(setup) -> None:
    model, module, layer = setup
    x = sample_batch(2, TINY)
    ours = explainers.explain(model, x, "score_cam", TARGETS, layer, batch_size=64)
    oracle = ScoreCAM(model, [module])
    oracle.batch_size = 64
    theirs, _, _ = oracle_raw(lambda m, layers: oracle, model, module, x)
    assert theirs.amax(dim=(1, 2)).min() > 0
    assert relative_error(ours.raw, theirs) <= TOLERANCE
    chunked = explainers.explain(model, x, "score_cam", TARGETS, layer, memory_mb=1.0)
    assert relative_error(chunked.raw, ours.raw) <= 1e-5  # chunk sizes change nothing


def test_ablation_cam_matches_pytorch_grad_cam(setup) -> None:
    model, module, layer = setup
    x = sample_batch(5, TINY)
    ours = explainers.explain(model, x, "ablation_cam", TARGETS, layer)
    theirs, _, _ = oracle_raw(AblationCAM, model, module, x, batch_size=64)
    assert theirs.amax(dim=(1, 2)).min() > 0
    assert relative_error(ours.raw, theirs) <= TOLERANCE
    assert all(not m._forward_hooks for m in model.modules()), "the ablation hook is removed"


def test_input_x_gradient_matches_captum(setup) -> None:
    model, _, _ = setup
    x = sample_batch()
    ours = explainers.explain(model, x, "input_x_gradient", TARGETS)
    theirs = InputXGradient(model).attribute(x.clone().requires_grad_(), target=TARGETS)
    assert relative_error(ours.pixel, theirs) <= TOLERANCE
    assert relative_error(ours.maps, theirs.sum(dim=1)) <= TOLERANCE


def test_input_x_gradient_and_saliency_ride_on_the_cam_pass(setup) -> None:
    """Asked for together with a CAM method, both come from the CAM pass's backward: the same maps."""
    model, _, layer = setup
    x = sample_batch()
    together = explainers.explain_many(model, x, ["grad_cam", "saliency", "input_x_gradient"], [TARGETS], layer)
    for name in ("saliency", "input_x_gradient"):
        alone = explainers.explain(model, x, name, TARGETS)
        assert relative_error(together[name][0].pixel, alone.pixel) <= TOLERANCE


def test_vargrad_is_the_variance_of_captum_saliency_over_the_same_noisy_copies(setup) -> None:
    model, _, _ = setup
    x = sample_batch(2, TINY)
    options = {"samples": 4, "noise_level": 0.2, "seed": 3}
    ours = explainers.explain(model, x, "vargrad", TARGETS, **options)
    make = noisy_inputs(x, options["noise_level"], noise_generator(options["seed"], x.device))
    net = gradient_net(model)
    grads = torch.stack([Saliency(net).attribute(make(i, i + 1)[0].contiguous(memory_format=torch.channels_last),
                                                 target=TARGETS, abs=False) for i in range(options["samples"])])
    expected = grads.var(dim=0, unbiased=False)
    assert relative_error(ours.pixel, expected) <= 1e-3  # a variance of gradients: float32 cancellation
    assert relative_error(ours.maps, expected.amax(dim=1)) <= 1e-3
    assert ours.extras["seed"] == 3


def test_vargrad_of_a_linear_model_is_zero() -> None:
    """Known answer: a linear model's gradient does not depend on the input, so its variance is 0."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2)).eval()
    x = torch.randn(2, 3, 4, 4)
    result = explainers.explain(model, x, "vargrad", 1, samples=5, seed=0)
    assert result.maps.abs().max() < 1e-10
