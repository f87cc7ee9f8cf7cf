"""The folded channels_last copy that SmoothGrad and IG run on computes the network's function."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import explainers
import explainers.engine as engine
from explainers.folded import gradient_net
from tests.test_explainers_support import TARGETS, sample_batch, trained_looking


def relative_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.double() - expected.double()).norm() / expected.double().norm())


@pytest.fixture(scope="module", params=["resnet18", "mobilenet_v2"])
def model(request) -> nn.Module:
    return trained_looking(request.param)


def test_copy_folds_batchnorm_and_computes_the_same_logits(model) -> None:
    net = gradient_net(model)
    assert net is not model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "the original keeps its BatchNorm"
    conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = sample_batch(5, (3, 3, 96, 128))
    with torch.no_grad():
        expected, folded = model(x), net(x.contiguous(memory_format=torch.channels_last))
    assert relative_l2(folded, expected) < 5e-5  # float32 rounding through ~50 layers
    assert not any(p.requires_grad for p in net.parameters())


def test_bundled_model_copy_gives_the_same_logits_on_a_photo() -> None:
    from models import load_image_model
    from models.samples import load_sample

    bundled = load_image_model()
    x = bundled.preprocess(load_sample("coffee"))
    with torch.no_grad():
        expected, folded = bundled.net(x), gradient_net(bundled.net)(x.contiguous(memory_format=torch.channels_last))
    assert relative_l2(folded, expected) < 5e-5  # float32 rounding through ~50 layers
    assert folded.argmax() == expected.argmax()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gradient_net(bundled.net).modules())  # functional convs too


def test_bundled_copy_gradient_on_a_photo_is_as_close_to_float64_as_the_network() -> None:
    """The folded weights are computed in float64: folded in float32, the bundled model's input gradient
    on the cat moved 2.6e-3 from float64's, 4000x the network's own float32 error (6e-7)."""
    from models import load_image_model
    from models.samples import load_sample

    bundled = load_image_model()
    x = bundled.preprocess(load_sample("cat"))

    def gradient(net: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        inputs = inputs.clone().requires_grad_(True)
        net(inputs)[0, 281].backward()
        return inputs.grad

    exact = gradient(copy.deepcopy(bundled.net).double(), x.double())
    own = relative_l2(gradient(bundled.net, x), exact)
    folded = relative_l2(gradient(gradient_net(bundled.net), x.contiguous(memory_format=torch.channels_last)), exact)
    assert folded <= 10 * own + 1e-6, (folded, own)


class SameConv(nn.Conv2d):
    """A Conv2d subclass with its own forward (as EfficientNet-Lite's static-padding convolutions): fx traces
    through it to a functional conv2d on its parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                                          self.groups)


class Functional(nn.Module):
    """Folded: conv + BN with and without a bias, a depthwise one; not folded: a conv read twice, a BN in training."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.bn_a = SameConv(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.b, self.bn_b = SameConv(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8)
        self.c, self.bn_c = SameConv(8, 8, 1), nn.BatchNorm2d(8)
        self.d, self.bn_d = SameConv(8, 8, 1), nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn_a(self.a(x)))
        x = self.bn_b(self.b(x))
        c = self.c(x)
        x = self.bn_c(c) + c
        return self.bn_d(self.d(x)).mean((2, 3))


def test_batchnorms_after_functional_convolutions_are_folded_and_compute_the_same_function() -> None:
    from torch import fx

    from explainers.folded import fold_functional

    torch.manual_seed(0)
    model = Functional()
    for bn in (model.bn_a, model.bn_b, model.bn_c, model.bn_d):  # statistics far from the identity
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    model.bn_d.train()
    net = fx.symbolic_trace(copy.deepcopy(model))
    assert fold_functional(net) == 2  # a (no bias) and b (depthwise); c's output is read twice, d's BN trains
    left = {name for name, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert left == {"bn_c", "bn_d"}
    net.eval()
    model.bn_d.eval()
    x = sample_batch(3, (2, 3, 12, 10))
    with torch.no_grad():
        expected = copy.deepcopy(model).double()(x.double())
        assert relative_l2(net(x), expected) < 1e-5
    assert relative_l2(model(x).detach(), expected) < 1e-5


def test_copy_is_cached_and_rebuilt_when_weights_change() -> None:
    model = trained_looking("resnet18")
    first = gradient_net(model)
    assert gradient_net(model) is first
    with torch.no_grad():
        model.fc.weight.mul_(-1.0)  # in place: bumps the parameter's version
    second = gradient_net(model)
    assert second is not first
    x = sample_batch(6, (1, 3, 64, 64))
    with torch.no_grad():
        assert relative_l2(second(x), model(x)) < 1e-5
    model.load_state_dict(trained_looking("resnet18", seed=3).state_dict())
    third = gradient_net(model)
    with torch.no_grad():
        assert relative_l2(third(x), model(x)) < 1e-5


def test_training_mode_and_networks_without_convolutions_are_used_as_given() -> None:
    model = trained_looking("resnet18").train()
    assert gradient_net(model) is model
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    assert gradient_net(mlp) is mlp


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it, so nothing is folded."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.conv(x))
        if h.mean() > 100:  # never true; only there to defeat tracing
            h = -h
        return self.head(h.relu().mean(dim=(2, 3)))


def test_untraceable_network_gets_an_unfolded_channels_last_copy() -> None:
    torch.manual_seed(0)
    model = Branchy().eval()
    net = gradient_net(model)
    assert net is not model and any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        assert relative_l2(net(x), model(x)) < 1e-6


def _smooth(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ReLU / ReLU6 replaced by SiLU: the same network without kinks."""
    smooth = copy.deepcopy(model)
    for name, module in list(smooth.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, (nn.ReLU, nn.ReLU6)):
                setattr(module, child_name, nn.SiLU())
    return smooth


def test_ig_on_the_copy_is_as_close_to_float64_as_on_the_network(model, monkeypatch) -> None:
    """Gradients of ReLU networks jump at kinks, so float32 rounding (any kernel or layout
    change) can flip a unit that sits within rounding distance of its kink: how far the copy's
    float32 IG lands from float64 then depends on the CPU's kernels (measured 3.5x the network's
    own float32 error on an AVX512 machine, under 3x on AVX2). So the copy is held to the float64
    result as closely as the unfolded network's float32 IG on the same network with its kinks
    smoothed (SiLU), where rounding cannot flip anything; with the kinks, within 2% (L2)."""
    x = sample_batch(7, (3, 3, 96, 128))
    options = {"steps": 8, "tolerance": 0}

    def errors(net: nn.Module) -> tuple[float, float, float]:
        folded = explainers.explain(net, x, "integrated_gradients", TARGETS, **options).pixel
        exact = explainers.explain(copy.deepcopy(net).double(), x.double(), "integrated_gradients", TARGETS, **options).pixel
        with monkeypatch.context() as patch:
            patch.setattr(engine, "gradient_net", lambda m: m)
            plain = explainers.explain(net, x, "integrated_gradients", TARGETS, **options).pixel
        return relative_l2(plain, folded), relative_l2(folded, exact), relative_l2(plain, exact)

    copy_vs_plain, folded_error, plain_error = errors(_smooth(model))
    assert copy_vs_plain > 0, "the copy was not used"
    assert folded_error <= 3 * plain_error + 1e-6
    assert errors(model)[1] < 2e-2
