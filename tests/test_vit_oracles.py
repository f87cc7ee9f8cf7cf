"""Every CAM method on vision transformers against pytorch-grad-cam 1.5.7 with its reshape_transform
(test-only oracle): torchvision ViT (class token dropped, 6x6 patches) and Swin (channels-last 6x8
stage output of a non-square input), small random-init configurations with perturbed LayerNorms;
raw maps (pytorch-grad-cam's ReLU'd map before its min-max scaling) agree to a relative error <= 1e-4.
We pass no reshape: the grid is inferred (explainers.tokens)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import (
    AblationCAM,
    EigenCAM,
    EigenGradCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
)
from pytorch_grad_cam.ablation_layer import AblationLayerVit
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction

import explainers
from tests.test_explainers_support import relative_error, sample_batch, state_of
from tests.vit_support import SWIN_SIZE, VIT_SIZE, tiny_swin, tiny_vit

TOLERANCE = 1e-4
TARGETS = [2, 5, 1]


def vit_reshape(tensor: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's vit_reshape_transform for this ViT's 6x6 patch grid."""
    return tensor[:, 1:, :].reshape(tensor.size(0), 6, 6, tensor.size(2)).permute(0, 3, 1, 2)


def swin_reshape(tensor: torch.Tensor) -> torch.Tensor:
    """torchvision Swin stages are (B, h, w, C): channels to the front, as swinT_reshape_transform does."""
    return tensor.permute(0, 3, 1, 2)


CASES = {
    "vit": (tiny_vit, "encoder.layers.encoder_layer_2.ln_1", vit_reshape, (VIT_SIZE, VIT_SIZE), AblationLayerVit),
    "swin": (tiny_swin, "features.3.1.norm1", swin_reshape, SWIN_SIZE, AblationLayerVit),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    build, layer, reshape, size, ablation = CASES[request.param]
    model = build()
    return model, layer, dict(model.named_modules())[layer], reshape, sample_batch(5, (3, 3, *size)), ablation


def oracle_raw(cam, x: torch.Tensor, targets) -> tuple[torch.Tensor, np.ndarray, np.ndarray | None]:
    """pytorch-grad-cam's map before its min-max scaling (with its ReLU), and its reshaped A and G."""
    try:
        outputs = cam.activations_and_grads(x)
        if cam.uses_gradients:
            sum(t(o) for t, o in zip(targets, outputs)).backward()
        activations = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy() if cam.uses_gradients else None
        raw = cam.get_cam_image(x, cam.target_layers[0], targets, activations, grads, eigen_smooth=False)
    finally:
        cam.activations_and_grads.release()
    return torch.from_numpy(np.maximum(raw, 0)), activations, grads


GRADIENT_CAMS = {"grad_cam": GradCAM, "grad_cam_plus_plus": GradCAMPlusPlus, "hirescam": HiResCAM,
                 "xgrad_cam": XGradCAM, "layer_cam": LayerCAM}


@pytest.mark.parametrize("name", list(GRADIENT_CAMS))
def test_gradient_cams_match_pytorch_grad_cam(case, name) -> None:
    model, layer, module, reshape, x, _ = case
    ours = explainers.explain(model, x, name, TARGETS, layer)
    theirs, _, _ = oracle_raw(GRADIENT_CAMS[name](model, [module], reshape_transform=reshape), x,
                              [ClassifierOutputTarget(t) for t in TARGETS])
    assert theirs.amax(dim=(1, 2)).min() > 0, "a non-degenerate reference"
    assert relative_error(ours.raw, theirs) <= TOLERANCE
    assert ours.maps.shape == x.shape[:1] + x.shape[2:]


def test_negative_grad_cam_is_grad_cam_of_the_negated_score(case) -> None:
    model, layer, module, reshape, x, _ = case
    ours = explainers.explain(model, x, "grad_cam_negative", TARGETS, layer)
    targets = [lambda output, t=t: -output[..., t] for t in TARGETS]
    theirs, _, _ = oracle_raw(GradCAM(model, [module], reshape_transform=reshape), x, targets)
    assert theirs.amax(dim=(1, 2)).min() > 0
    assert relative_error(ours.raw, theirs) <= TOLERANCE


def test_smooth_grad_cam_plus_plus_without_noise_is_grad_cam_plus_plus(case) -> None:
    """With noise_level 0 every copy is the clean image: its layer moments are G, G^2, G^3 of the
    token layer, reshaped like the shared pass's (so this checks the noisy path's reshape)."""
    model, layer, module, reshape, x, _ = case
    ours = explainers.explain(model, x, "smooth_grad_cam_plus_plus", TARGETS, layer, samples=2, noise_level=0.0)
    theirs, _, _ = oracle_raw(GradCAMPlusPlus(model, [module], reshape_transform=reshape), x,
                              [ClassifierOutputTarget(t) for t in TARGETS])
    assert relative_error(ours.raw, theirs) <= TOLERANCE


@pytest.mark.parametrize(("name", "cls", "uses"), [("eigen_cam", EigenCAM, "a"), ("eigen_grad_cam", EigenGradCAM, "ga")])
def test_eigen_cams_match_pytorch_grad_cam_with_its_sign_correction(case, name, cls, uses) -> None:
    model, layer, module, reshape, x, _ = case
    ours = explainers.explain(model, x, name, TARGETS, layer)
    _, activations, grads = oracle_raw(cls(model, [module], reshape_transform=reshape), x,
                                       [ClassifierOutputTarget(t) for t in TARGETS])
    source = activations if uses == "a" else grads * activations
    corrected = torch.from_numpy(get_2d_projection_with_sign_correction(source)).clamp_min(0)
    assert corrected.amax(dim=(1, 2)).min() > 0
    assert relative_error(ours.raw, corrected) <= TOLERANCE


def test_score_cam_matches_pytorch_grad_cam(case) -> None:
    model, layer, module, reshape, x, _ = case
    ours = explainers.explain(model, x, "score_cam", TARGETS, layer, batch_size=16)
    oracle = ScoreCAM(model, [module], reshape_transform=reshape)
    oracle.batch_size = 16
    theirs, _, _ = oracle_raw(oracle, x, [ClassifierOutputTarget(t) for t in TARGETS])
    assert (theirs.amax(dim=(1, 2)) > 0).sum() >= 2, "non-degenerate (one ViT item's map is ReLU'd away)"
    assert relative_error(ours.raw, theirs) <= TOLERANCE


def test_ablation_cam_matches_pytorch_grad_cam(case) -> None:
    """Channel k is switched off in every token (the class token's too), as AblationLayerVit does;
    pytorch-grad-cam at batch_size 1, where its ablation value is min(A) - 1e7 as ours."""
    model, layer, module, reshape, x, ablation = case
    before = state_of(model)
    ours = explainers.explain(model, x, "ablation_cam", TARGETS, layer)
    cam = AblationCAM(model, [module], reshape_transform=reshape, ablation_layer=ablation(), batch_size=1)
    theirs, _, _ = oracle_raw(cam, x, [ClassifierOutputTarget(t) for t in TARGETS])
    assert theirs.amax(dim=(1, 2)).min() > 0
    assert relative_error(ours.raw, theirs) <= TOLERANCE
    assert state_of(model) == before, "hooks removed, flags restored"


def test_cam_on_swin_reads_the_pooled_head_exactly() -> None:
    """Swin's final norm reaches the logits through average pooling and one linear layer, so CAM
    applies there: the mean of its map plus the head's bias is the logit (Zhou et al. 2016)."""
    model = tiny_swin()
    x = sample_batch(2, (3, 3, *SWIN_SIZE))
    result = explainers.explain(model, x, "cam", TARGETS, "norm")
    logits = model(x).detach()
    expected = logits[torch.arange(3), TARGETS] - model.head.bias.detach()[TARGETS]
    torch.testing.assert_close(result.raw.mean(dim=(1, 2)), expected, rtol=1e-5, atol=1e-5)


def test_cam_on_a_vit_block_is_refused_plainly() -> None:
    model = tiny_vit()
    with pytest.raises(explainers.ExplainerError, match="average pooling and one linear layer"):
        explainers.explain(model, sample_batch(2, (1, 3, VIT_SIZE, VIT_SIZE)), "cam", None,
                           "encoder.layers.encoder_layer_2.ln_1")
