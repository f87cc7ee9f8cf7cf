"""Every method against an independent implementation: captum and pytorch-grad-cam (test-only).

Two torchvision architectures with trained-looking weights, a batch of 3 with a different
target per item, a non-square 160x192 input; raw values (before any normalisation) must agree
to a relative error <= 1e-4.

SmoothGrad and IG run on the network's folded channels_last copy (``explainers.folded``), so
their oracle runs on that same copy; tests/test_folded.py shows the copy computes the same
function as the network and that the gradients differ only by float32 rounding.
"""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients, LayerActivation, LayerAttribution, LayerGradCam, NoiseTunnel, Saliency
from pytorch_grad_cam import GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

import explainers
from explainers.folded import gradient_net
from explainers.gradients import gaussian_blur
from tests.test_explainers_support import TARGETS, relative_error, sample_batch, trained_looking

TOLERANCE = 1e-4
SMALL = (3, 3, 96, 128)  # for the many-pass methods, to stay quick on 2 cores; still non-square
ARCHS = {"resnet18": ("layer4", "fc"), "mobilenet_v2": ("features.18", "classifier.1")}


@pytest.fixture(scope="module", params=list(ARCHS))
def setup(request):
    arch = request.param
    layer, head = ARCHS[arch]
    model = trained_looking(arch)
    modules = dict(model.named_modules())
    return model, modules[layer], layer, modules[head], sample_batch()


class Negated(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.model(x)


def test_grad_cam_matches_captum_layer_grad_cam(setup) -> None:
    model, module, layer, _, x = setup
    ours = explainers.explain(model, x, "grad_cam", TARGETS, layer)
    theirs = LayerGradCam(model, module).attribute(x, target=TARGETS, relu_attributions=True)
    assert relative_error(ours.raw, theirs[:, 0]) <= TOLERANCE
    upsampled = LayerAttribution.interpolate(theirs, tuple(x.shape[2:]), "bilinear")
    assert relative_error(ours.maps, upsampled[:, 0]) <= TOLERANCE
    assert ours.targets == TARGETS


def test_grad_cam_probability_score_matches_captum_on_softmax(setup) -> None:
    model, module, layer, _, x = setup
    ours = explainers.explain(model, x, "grad_cam", TARGETS, layer, score="probability")
    softmaxed = nn.Sequential(model, nn.Softmax(dim=1))
    theirs = LayerGradCam(softmaxed, module).attribute(x, target=TARGETS, relu_attributions=True)
    assert relative_error(ours.raw, theirs[:, 0]) <= TOLERANCE


def test_grad_cam_counterfactual_matches_captum_on_negated_logits(setup) -> None:
    model, module, layer, _, x = setup
    ours = explainers.explain(model, x, "grad_cam", TARGETS, layer, counterfactual=True)
    theirs = LayerGradCam(Negated(model), module).attribute(x, target=TARGETS, relu_attributions=True)
    assert relative_error(ours.raw, theirs[:, 0]) <= TOLERANCE
    assert ours.raw.abs().max() > 0


def test_cam_matches_head_weights_times_captured_activations(setup) -> None:
    model, module, layer, head, x = setup
    ours = explainers.explain(model, x, "cam", TARGETS, layer)
    activations = LayerActivation(model, module).attribute(x)
    expected = torch.einsum("bk,bkhw->bhw", head.weight[TARGETS].detach(), activations)
    assert relative_error(ours.raw, expected) <= TOLERANCE
    assert (ours.raw < 0).any(), "CAM keeps its sign (no ReLU)"


def test_grad_cam_plus_plus_matches_pytorch_grad_cam_raw(setup) -> None:
    model, module, layer, _, x = setup
    ours = explainers.explain(model, x, "grad_cam_plus_plus", TARGETS, layer)
    oracle = GradCAMPlusPlus(model, [module])
    try:
        outputs = oracle.activations_and_grads(x)
        targets = [ClassifierOutputTarget(t) for t in TARGETS]
        sum(t(o) for t, o in zip(targets, outputs)).backward()
        activations = oracle.activations_and_grads.activations[0].numpy()
        grads = oracle.activations_and_grads.gradients[0].numpy()
        raw = oracle.get_cam_image(x, module, targets, activations, grads)
    finally:
        oracle.activations_and_grads.release()
    theirs = torch.from_numpy(raw).clamp_min(0)  # its ReLU, before its min-max scaling
    assert relative_error(ours.raw, theirs) <= TOLERANCE
    assert theirs.amax(dim=(1, 2)).min() > 0


def test_saliency_matches_captum(setup) -> None:
    model, _, _, _, x = setup
    ours = explainers.explain(model, x, "saliency", TARGETS)
    absolute = Saliency(model).attribute(x, target=TARGETS, abs=True)
    signed = Saliency(model).attribute(x, target=TARGETS, abs=False)
    assert relative_error(ours.maps, absolute.amax(dim=1)) <= TOLERANCE
    assert relative_error(ours.pixel, signed) <= TOLERANCE


def test_smoothgrad_without_noise_matches_captum_noise_tunnel(setup) -> None:
    model, x = setup[0], sample_batch(2, SMALL)
    ours = explainers.explain(model, x, "smoothgrad", TARGETS, samples=3, noise_level=0.0)
    tunnel = NoiseTunnel(Saliency(gradient_net(model)))
    x = x.contiguous(memory_format=torch.channels_last)
    absolute = tunnel.attribute(x, nt_type="smoothgrad", nt_samples=3, stdevs=0.0, target=TARGETS, abs=True)
    signed = tunnel.attribute(x, nt_type="smoothgrad", nt_samples=3, stdevs=0.0, target=TARGETS, abs=False)
    assert relative_error(ours.maps, absolute.amax(dim=1)) <= TOLERANCE
    assert relative_error(ours.pixel, signed) <= TOLERANCE


@pytest.mark.parametrize(
    ("rule", "captum_method", "baseline"),
    [("gauss_legendre", "gausslegendre", "zero"), ("riemann_middle", "riemann_middle", "blur")],
)
def test_integrated_gradients_matches_captum(setup, rule: str, captum_method: str, baseline: str) -> None:
    model, x = setup[0], sample_batch(3, SMALL)
    steps = 8
    ours = explainers.explain(model, x, "integrated_gradients", TARGETS, steps=steps, tolerance=0, rule=rule, baseline=baseline, blur_sigma=4.0)
    reference = torch.zeros_like(x) if baseline == "zero" else gaussian_blur(x, 4.0)
    attr, delta = IntegratedGradients(gradient_net(model)).attribute(
        x.contiguous(memory_format=torch.channels_last), reference, target=TARGETS, n_steps=steps, method=captum_method, return_convergence_delta=True
    )
    assert relative_error(ours.pixel, attr) <= TOLERANCE
    assert relative_error(ours.maps, attr.sum(dim=1)) <= TOLERANCE
    assert torch.allclose(ours.extras["delta"], delta.float(), atol=1e-4 * float(attr.abs().sum(dim=(1, 2, 3)).max()))
