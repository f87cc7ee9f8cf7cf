"""evaluation.road against pytorch-grad-cam's ROAD (the oracle) and the imputation by hand."""

import numpy as np
import pytest
import torch
from pytorch_grad_cam.metrics import road as reference
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget
from torch import nn

from evaluation.road import LERF, MORF, impute, kept_pixels, road_scores
from explainers.errors import ExplainerError


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                        nn.Linear(96, 5)).eval()
    x = torch.randn(1, 3, 20, 24)
    # distinct values on a 1/4096 grid: 1 - cam is exact in float32, so the reference's LeRF order is -cam's
    cam = (torch.randperm(20 * 24, generator=torch.Generator().manual_seed(1)).view(20, 24).float() + 1) / 4096
    return net, x, cam


@pytest.fixture
def no_noise(monkeypatch):
    monkeypatch.setattr(reference.NoisyLinearImputer.__init__, "__defaults__", (0.0, reference.neighbors_weights))


@pytest.mark.parametrize("score", ["probability", "logit"])
def test_equals_pytorch_grad_cam_road_without_noise(small, no_noise, score):
    net, x, cam = small
    percentiles = [20, 40, 60, 80]
    target = 3
    targets = [(ClassifierOutputSoftmaxTarget if score == "probability" else ClassifierOutputTarget)(target)]
    cams = cam.numpy()[None]
    ours = road_scores(net, x, {"cam": cam}, target, percentiles=percentiles, noise=0.0, score=score,
                       random_maps=0)["cam"]
    for i, p in enumerate(percentiles):
        morf = reference.ROADMostRelevantFirst(p)(x, cams, targets, net)[0]
        lerf = reference.ROADLeastRelevantFirst(p)(x, cams, targets, net)[0]
        assert ours.morf[i] == pytest.approx(float(morf), abs=2e-6)
        assert ours.lerf[i] == pytest.approx(float(lerf), abs=2e-6)
    combined = reference.ROADCombined(percentiles)(x, cams, targets, net)[0]
    assert ours.combined == pytest.approx(float(combined), abs=2e-6)
    assert ours.percentiles == tuple(percentiles) and ours.target == target


def test_imputation_equals_the_reference_solver_and_adds_noise_only_where_removed(small):
    _, x, cam = small
    image = x[0].double().numpy()
    for kind, p in ((MORF, 30), (LERF, 70)):
        kept = kept_pixels(cam.double().numpy(), p, kind)
        filled = impute(image, kept, 0.0, torch.Generator().manual_seed(0))
        expected = reference.NoisyLinearImputer(noise=0.0)(x[0], torch.from_numpy(kept.astype(np.float32)))
        np.testing.assert_allclose(filled, expected.double().numpy(), atol=1e-5)
        np.testing.assert_array_equal(filled[:, kept], image[:, kept])
        noisy = impute(image, kept, 0.5, torch.Generator().manual_seed(0))
        np.testing.assert_array_equal(noisy[:, kept], image[:, kept])
        assert np.std(noisy[:, ~kept] - filled[:, ~kept]) == pytest.approx(0.5, rel=0.15)


def test_imputed_value_is_the_weighted_mean_of_its_neighbours_by_hand():
    image = np.arange(9, dtype=np.float64).reshape(1, 3, 3)
    kept = np.ones((3, 3), bool)
    kept[1, 1] = False  # the centre: (4 edges x 1/6 + 4 corners x 1/12) of known values
    edges, corners = image[0, [0, 1, 1, 2], [1, 0, 2, 1]], image[0, [0, 0, 2, 2], [0, 2, 0, 2]]
    filled = impute(image, kept, 0.0, torch.Generator())
    assert filled[0, 1, 1] == pytest.approx(edges.sum() / 6 + corners.sum() / 12)
    corner = np.ones((3, 3), bool)
    corner[0, 0] = False  # 3 neighbours inside: weights 1/6, 1/6, 1/12, renormalised by their sum 5/12
    value = impute(image, corner, 0.0, torch.Generator())[0, 0, 0]
    assert value == pytest.approx((image[0, 0, 1] / 6 + image[0, 1, 0] / 6 + image[0, 1, 1] / 12) / (5 / 12))


def test_noisy_road_is_close_to_the_reference_and_reproducible(small):
    net, x, cam = small
    first = road_scores(net, x, {"cam": cam}, 1, random_maps=0)["cam"]
    again = road_scores(net, x, {"other": -cam, "cam": cam}, 1, random_maps=0)["cam"]
    assert first.combined == again.combined  # the noise is seeded per percentile, not per batch
    torch.manual_seed(0)
    combined = reference.ROADCombined([20, 40, 60, 80])(x, cam.numpy()[None], [ClassifierOutputSoftmaxTarget(1)], net)
    assert first.combined == pytest.approx(float(combined[0]), abs=5e-3)


def test_floor_verdicts_and_bad_input(small):
    net, x, cam = small
    found = road_scores(net, x, {"cam": cam, "zero": torch.zeros(20, 24)}, 1, random_maps=6, grids={"cam": (4, 4)})
    assert found["cam"].floor.count == 6 and found["cam"].floor.grid == (4, 4)
    assert found["zero"].floor.grid is None and not found["zero"].verdict.given
    assert "zero everywhere" in found["zero"].verdict.reason
    with pytest.raises(ExplainerError, match="percentiles"):
        road_scores(net, x, {"cam": cam}, percentiles=[0, 50])
    with pytest.raises(ExplainerError, match="shape"):
        road_scores(net, x, {"cam": cam[:5]})
