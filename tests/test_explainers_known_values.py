"""Hand-computed values on tiny hand-built models, and the quadrature rules' exactness."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import explainers
from explainers.quadrature import gauss_legendre, quadrature, riemann

# Input: 3 channels, 2x2 blocks of a 4x4 image. A 1x1 conv makes A_0 = x_0, A_1 = x_1 + x_2,
# a 2x2 average pool brings them to 2x2, then global average pooling and a linear head W.
BLOCKS = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]]])
A0 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
A1 = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
W = torch.tensor([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]])


class TinyCamNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        self.conv.weight.data = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]).view(2, 3, 1, 1)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(2, 3)
        self.fc.weight.data, self.fc.bias.data = W.clone(), torch.zeros(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.conv(x)).mean(dim=(2, 3)))


def tiny_input() -> torch.Tensor:
    return BLOCKS.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)[None]


def test_tiny_net_logits_are_as_computed_by_hand() -> None:
    # mean(A0) = 2.5, mean(A1) = 0.75: logits = (2.5 - 0.75, 1.25 + 1.5, -2.5)
    assert torch.allclose(TinyCamNet()(tiny_input()), torch.tensor([[1.75, 2.75, -2.5]]))


def test_cam_by_hand() -> None:
    top = explainers.explain(TinyCamNet(), tiny_input(), "cam", layer="pool")
    assert top.targets == [1]
    assert torch.allclose(top.raw[0], torch.tensor([[2.5, 3.0], [1.5, 4.0]]))  # 0.5 A0 + 2 A1
    # bilinear, align_corners=False, 2 -> 4: source rows -0.25, 0.25, 0.75, 1.25 (clamped)
    assert top.maps[0, 0, 0] == pytest.approx(2.5)
    assert top.maps[0, 0, 1] == pytest.approx(0.75 * 2.5 + 0.25 * 3.0)
    assert top.maps[0, 1, 1] == pytest.approx(0.5625 * 2.5 + 0.1875 * 3.0 + 0.1875 * 1.5 + 0.0625 * 4.0)
    negative = explainers.explain(TinyCamNet(), tiny_input(), "cam", target=2, layer="pool")
    assert torch.allclose(negative.raw[0], -A0)  # signed: no ReLU


def test_grad_cam_by_hand() -> None:
    # d logit_c / d A_k[i, j] = W[c, k] / 4, so w_k = W[c, k] / 4 and map = ReLU(CAM / 4)
    top = explainers.explain(TinyCamNet(), tiny_input(), "grad_cam", layer="pool")
    assert torch.allclose(top.raw[0], torch.tensor([[0.625, 0.75], [0.375, 1.0]]))
    against = explainers.explain(TinyCamNet(), tiny_input(), "grad_cam", target=2, layer="pool")
    assert torch.equal(against.raw[0], torch.zeros(2, 2))
    counter = explainers.explain(TinyCamNet(), tiny_input(), "grad_cam", target=2, layer="pool", counterfactual=True)
    assert torch.allclose(counter.raw[0], A0 / 4)


def test_grad_cam_plus_plus_weights_by_hand() -> None:
    # class 1: G0 = 0.125, G1 = 0.5 everywhere; sum A0 = 10, sum A1 = 3
    alpha0 = 0.125**2 / (2 * 0.125**2 + 10 * 0.125**3 + 1e-6)
    alpha1 = 0.5**2 / (2 * 0.5**2 + 3 * 0.5**3 + 1e-6)
    w0, w1 = 4 * 0.125 * alpha0, 4 * 0.5 * alpha1
    top = explainers.explain(TinyCamNet(), tiny_input(), "grad_cam_plus_plus", layer="pool")
    assert torch.allclose(top.raw[0], w0 * A0 + w1 * A1)
    # class 0: G1 = -0.25 < 0, so ReLU(G1) = 0 drops channel 1
    alpha0 = 0.25**2 / (2 * 0.25**2 + 10 * 0.25**3 + 1e-6)
    first = explainers.explain(TinyCamNet(), tiny_input(), "grad_cam_plus_plus", target=0, layer="pool")
    assert torch.allclose(first.raw[0], 4 * 0.25 * alpha0 * A0)


def test_smooth_grad_cam_plus_plus_on_a_linear_head_equals_grad_cam_plus_plus() -> None:
    # with GAP + linear after the layer, G does not depend on the input: the noisy averages of
    # G, G^2, G^3 are exact, and the clean activations are used, so the maps must coincide.
    plain = explainers.explain(TinyCamNet(), tiny_input(), "grad_cam_plus_plus", layer="pool")
    smooth = explainers.explain(
        TinyCamNet(), tiny_input(), "smooth_grad_cam_plus_plus", layer="pool", samples=5, noise_level=0.5, seed=0
    )
    assert torch.allclose(smooth.raw, plain.raw)


class Elementwise(nn.Module):
    """logits = (sum exp(x), sum sin(x), sum x^7 / 7 ... ) over all input values."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        return torch.stack([flat.exp().sum(1), flat.sin().sum(1), flat.pow(7).sum(1), 0.5 * flat.pow(2).sum(1)], dim=1)


def ramp() -> torch.Tensor:
    return torch.linspace(-1.5, 1.5, 2 * 3 * 4 * 5, dtype=torch.float64).view(2, 3, 4, 5)


FIXED = {"tolerance": 0}  # the fixed rule (50 Gauss-Legendre nodes), as captum


def test_integrated_gradients_closed_forms() -> None:
    x = ramp()
    # zero baseline: attr_i = x_i * integral_0^1 f'(a x_i) da = f(x_i) - f(0)
    exp = explainers.explain(Elementwise(), x, "integrated_gradients", target=0, **FIXED)
    assert torch.allclose(exp.pixel, x.exp() - 1, rtol=1e-10, atol=1e-12)
    sine = explainers.explain(Elementwise(), x, "integrated_gradients", target=1, **FIXED)
    assert torch.allclose(sine.pixel, x.sin(), rtol=1e-10, atol=1e-12)
    assert torch.allclose(sine.maps, x.sin().sum(dim=1))
    assert sine.extras["delta"].abs().max() < 1e-10


def test_integrated_gradients_with_a_black_baseline_closed_form() -> None:
    x, black = ramp(), torch.tensor([-1.0, 0.5, 0.25], dtype=torch.float64)
    b = black.view(1, 3, 1, 1).expand_as(x)
    result = explainers.explain(Elementwise(), x, "integrated_gradients", target=0, baseline="black", black=black.tolist(), **FIXED)
    assert torch.allclose(result.pixel, x.exp() - b.exp(), rtol=1e-10, atol=1e-12)  # f(x_i) - f(b_i)


def test_gauss_legendre_is_exact_where_riemann_is_not() -> None:
    x = ramp()
    # f = x^7 / 7 per value: the integrand a^6 x^7 has degree 6 <= 2*4 - 1, exact with 4 nodes
    gauss = explainers.explain(Elementwise(), x, "integrated_gradients", target=2, steps=4, **FIXED)
    assert torch.allclose(gauss.pixel, x.pow(7), rtol=1e-10, atol=1e-12)
    middle = explainers.explain(Elementwise(), x, "integrated_gradients", target=2, steps=4, rule="riemann_middle", tolerance=0)
    assert not torch.allclose(middle.pixel, x.pow(7), rtol=1e-3)


@pytest.mark.parametrize("steps", [1, 3, 8, 50])
def test_quadrature_rules_integrate_polynomials(steps: int) -> None:
    alphas, weights = gauss_legendre(steps)
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-14)
    assert alphas.min() > 0 and alphas.max() < 1
    for degree in range(2 * steps):
        assert float((weights * alphas**degree).sum()) == pytest.approx(1 / (degree + 1), abs=1e-12)
    for kind in ("left", "right", "middle"):
        alphas, weights = riemann(steps, kind)
        assert float(weights.sum()) == pytest.approx(1.0)
        assert float((weights * alphas).sum()) == pytest.approx(0.5 + {"left": -0.5, "right": 0.5, "middle": 0.0}[kind] / steps)
    if steps > 1:
        alphas, weights = quadrature("riemann_trapezoid", steps)
        assert float(weights.sum()) == pytest.approx(1.0)  # a true trapezoid rule (captum's sums to (n-1)/n)
        assert float((weights * alphas).sum()) == pytest.approx(0.5)


def test_saliency_by_hand() -> None:
    # score = sum(x^2) / 2: the gradient is x itself, the map max_c |x_c|
    x = ramp()
    result = explainers.explain(Elementwise(), x, "saliency", target=3)
    assert torch.equal(result.pixel, x)
    assert torch.equal(result.maps, x.abs().amax(dim=1))


def test_smoothgrad_noise_has_the_documented_spread() -> None:
    # score = sum(x^2) / 2: each noisy gradient is x + noise, so pixel - x is the mean noise,
    # with standard deviation sigma / sqrt(n), sigma = noise_level * (max - min) of the item.
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x[1] *= 4.0
    n, level = 16, 0.2
    result = explainers.explain(Elementwise(), x, "smoothgrad", target=3, samples=n, noise_level=level, seed=3)
    for item in range(2):
        sigma = level * float(x[item].max() - x[item].min())
        measured = float((result.pixel[item] - x[item]).std()) * math.sqrt(n)
        assert measured == pytest.approx(sigma, rel=0.03)
    quiet = explainers.explain(Elementwise(), x, "smoothgrad", target=3, samples=2, noise_level=0.0)
    assert torch.equal(quiet.maps, x.abs().amax(dim=1))


class Kinked(nn.Module):
    """score = sum ReLU(x - 0.3): a kink inside the path from 0, so quadrature error ~ 1/steps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x - 0.3).flatten(1).sum(1, keepdim=True).repeat(1, 2)


def test_adaptive_panels_reach_the_tolerance_on_a_kink() -> None:
    x = torch.linspace(0.35, 1.0, 12, dtype=torch.float64).view(1, 3, 2, 2)
    exact = torch.relu(x - 0.3)  # closed form: f(x_i) - f(0)
    fixed = explainers.explain(Kinked(), x, "integrated_gradients", target=0, steps=5, tolerance=0)
    assert fixed.extras["delta"].abs() > 0.01 * exact.sum()
    adaptive = explainers.explain(Kinked(), x, "integrated_gradients", target=0, tolerance=1e-3)
    assert adaptive.extras["delta"].abs() <= 1e-3 * exact.sum()
    # completeness bounds the sum of the values, not each one: the 12 values' errors partly cancel
    assert torch.allclose(adaptive.pixel, exact, atol=4e-2 * float(exact.max()))
    # Each value's integrand x_i * 1[a x_i > 0.3] jumps once; uniform trapezoid panels need
    # ~1 / tolerance points to bring the jumps' error under 1e-3, bisection ~log2 of that per jump.
    passes = int(adaptive.extras["steps"][0])
    uniform = explainers.explain(Kinked(), x, "integrated_gradients", target=0, steps=passes, rule="riemann_trapezoid", tolerance=0)
    assert uniform.extras["delta"].abs() > 1e-3 * exact.sum()
    assert 9 < passes <= 200


class Step(nn.Module):
    """score = 5 * 1[mean(x) > 0.5]: a jump no panel can integrate (the gradient is 0 everywhere), so the
    panel holding it keeps its whole error however narrow it gets. Counts its forwards; stops a runaway
    loop by raising instead of hanging the test."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.rows, self.limit = 0, limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += len(x)
        if self.rows > self.limit:
            raise RuntimeError(f"adaptive IG ran {self.rows} rows, past its max_steps")
        mean = x.flatten(1).mean(1, keepdim=True)
        return torch.cat([5.0 * (mean > 0.5).to(x.dtype) + 0.0 * mean, -mean], dim=1)


def test_adaptive_panels_stop_at_a_jump_they_cannot_integrate() -> None:
    """Bisecting the jump's panel down to float resolution gives no new point; the loop ends there (it
    once spun forever on a randomised network in the sanity check) and the delta reports the jump."""
    x = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    model = Step(limit=1000)
    result = explainers.explain(model, x, "integrated_gradients", target=0, tolerance=1e-3, max_steps=400)
    passes = int(result.extras["steps"][0])
    assert passes < 400 and model.rows < 1000  # ~ 5 + 53 bisections of the jump's panel, not max_steps
    assert float(result.extras["delta"][0]) == pytest.approx(-5.0)  # sum(IG) = 0 misses f(x) - f(0) = 5


def test_adaptive_panels_on_smooth_closed_forms() -> None:
    x = ramp()
    for target, exact in [(0, x.exp() - 1), (1, x.sin()), (3, 0.5 * x.pow(2))]:
        result = explainers.explain(Elementwise(), x, "integrated_gradients", target=target, tolerance=1e-4)
        total = exact.sum(dim=(1, 2, 3))
        assert (result.extras["delta"].abs() <= 1e-4 * total.abs()).all()
        assert torch.allclose(result.pixel, exact, atol=2e-3 * float(exact.abs().max()))
    # a quadratic's integrand is linear in alpha: trapezoid panels are exact from the start
    quadratic = explainers.explain(Elementwise(), x, "integrated_gradients", target=3, tolerance=1e-12)
    assert (quadratic.extras["steps"] == 9).all()
    assert torch.allclose(quadratic.pixel, 0.5 * x.pow(2), rtol=1e-10, atol=1e-12)
