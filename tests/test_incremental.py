"""Incremental occlusion (:mod:`explainers.incremental`): receptive fields by hand and against gradient
support, cuts at block outputs that stop at the first global operation, equality with captum's Occlusion
on networks whose stages really crop, and the whole-forward check that catches a misread graph."""

from __future__ import annotations

import pytest
import torch
import torchvision
from captum.attr import Occlusion
from torch import fx, nn

import explainers
import models
from explainers import incremental
from explainers.folded import gradient_net
from explainers.gradients import gaussian_blur


def output_field(module: nn.Module) -> incremental.Field:
    graph = fx.symbolic_trace(module)
    out = next(n for n in graph.graph.nodes if n.op == "output").args[0]
    return incremental.fields(graph)[out]


def test_fields_compose_as_computed_by_hand() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 5, stride=2, padding=2),
                        nn.ZeroPad2d((1, 0, 2, 0)), nn.Conv2d(4, 2, 3))
    # conv3 p1 (1,-1,1); pool 2 -> (2,-1,2); conv5 s2 p2 -> (4,-5,6); pad top 2 / left 1 -> rows (4,-13,-2),
    # cols (4,-9,2); conv3 -> rows (4,-13,6), cols (4,-9,10)
    assert output_field(net) == ((4, -13, 6), (4, -9, 10))


def test_fields_equal_the_gradients_support() -> None:
    """Output (i, j) of a net with positive weights (no cancellation) depends on exactly the pixels its field names."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AvgPool2d(3, stride=2, padding=1),
                        nn.Conv2d(2, 2, (3, 5), stride=(1, 2), padding=(0, 2), dilation=(2, 1)), nn.ReLU()).double()
    for p in net.parameters():
        p.data.uniform_(0.1, 1.0)
    (sr, lr, hr), (sc, lc, hc) = output_field(net)
    x = torch.rand(1, 1, 40, 44, dtype=torch.float64, requires_grad=True)
    out = net(x)
    for i, j in [(0, 0), (5, 3), (out.shape[2] - 1, out.shape[3] - 1)]:
        (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x, retain_graph=True)
        rows, cols = grad[0, 0].abs().sum(1).nonzero().flatten(), grad[0, 0].abs().sum(0).nonzero().flatten()
        assert (int(rows.min()), int(rows.max())) == (max(0, i * sr + lr), min(39, i * sr + hr))
        assert (int(cols.min()), int(cols.max())) == (max(0, j * sc + lc), min(43, j * sc + hc))


class Squeeze(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x.mean(dim=(2, 3), keepdim=True))


def test_cuts_are_block_outputs_and_stop_at_the_first_global_operation() -> None:
    net = gradient_net(torchvision.models.resnet18().eval())
    assert [n.name for n in incremental.cuts(net)] == [
        "maxpool", *[f"layer{k}_{b}_relu_1" for k in range(1, 5) for b in range(2)]]
    gated = fx.symbolic_trace(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), Squeeze(), nn.Conv2d(4, 4, 3), nn.ReLU()))
    assert [n.name for n in incremental.cuts(gated)] == ["_1"]  # the ReLU before the global mean


def resnet(seed: int = 0) -> nn.Module:
    """resnet18 in float64 with moved BatchNorm statistics (so folding and the crops are both exercised)."""
    torch.manual_seed(seed)
    net = torchvision.models.resnet18(num_classes=7).double().eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return net


def cropped_stages(model: nn.Module, shape: tuple[int, ...], window: tuple[int, int], stride: tuple[int, int]) -> int:
    """How many stages run on crops for these windows (0 would make the comparison below say nothing)."""
    from explainers.catalog.occlusion import windows
    from explainers.folded import to_layout

    net = gradient_net(model)
    plan = incremental.plan_of(net)
    with torch.no_grad():
        values = plan.activations(to_layout(net, model, torch.zeros(1, *shape[1:], dtype=torch.float64)))
    boxes = [(t, min(t + window[0], shape[2]), c, min(c + window[1], shape[3]))
             for t, c in windows(shape, {"window": window, "stride": stride})]
    return plan.geometry([v.shape for v in values], boxes)[0]


@pytest.mark.parametrize(("window", "stride", "fill"), [((8, 8), (8, 8), "zero"), ((12, 16), (10, 12), "blur")])
def test_incremental_occlusion_equals_captum_on_a_resnet(window, stride, fill) -> None:
    model = resnet()
    torch.manual_seed(3)
    targets = [1, 4] if fill == "blur" else [1]  # two items through the windows' 143 forwards, one through 272
    x = torch.randn(len(targets), 3, 128, 136, dtype=torch.float64)
    assert cropped_stages(model, x.shape, window, stride) >= 3
    ours = explainers.explain(model, x, "occlusion", targets, window=window, stride=stride, baseline=fill, blur_sigma=2.0)
    baselines = gaussian_blur(x, 2.0) if fill == "blur" else 0
    theirs = Occlusion(model).attribute(x, sliding_window_shapes=(3, *window), strides=(3, *stride), target=targets,
                                        baselines=baselines)[:, 0].double()
    assert ours.extras["incremental"] == [True] * len(targets)
    assert theirs.abs().max() > 1e-3
    torch.testing.assert_close(ours.maps, theirs, rtol=1e-5, atol=1e-6 * float(theirs.abs().max()))


def test_incremental_equals_whole_forwards_on_the_bundled_model() -> None:
    """EfficientNet-Lite0: static 'same' paddings and functional convolutions in the traced graph."""
    lite = models.load_image_model()
    x = lite.preprocess(models.load_sample("cat"))
    options = {"window": 32, "stride": 16, "seed": 0}
    fast = explainers.explain(lite.net, x, "occlusion", None, **options)
    whole = explainers.explain(lite.net, x, "occlusion", None, incremental=False, **options)
    assert fast.extras["incremental"] == [True] and whole.extras["incremental"] == [False]
    assert whole.maps.abs().max() > 1e-2
    torch.testing.assert_close(fast.maps, whole.maps, rtol=1e-3, atol=1e-4 * float(whole.maps.abs().max()))


def test_a_misread_graph_falls_back_to_whole_forwards(monkeypatch) -> None:
    model = resnet(1)
    x = torch.randn(1, 3, 48, 48, dtype=torch.float64)
    expected = explainers.explain(model, x, "occlusion", 2, window=8, stride=8, incremental=False)
    right = incremental.window_logits
    monkeypatch.setattr(incremental, "window_logits", lambda *args: right(*args) + 0.5)
    got = explainers.explain(model, x, "occlusion", 2, window=8, stride=8)
    assert got.extras["incremental"] == [False]
    torch.testing.assert_close(got.maps, expected.maps)


def test_a_network_without_a_graph_runs_whole_forwards() -> None:
    class Untraceable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            if float(x.sum()) > 1e9:  # data-dependent control flow: torch.fx cannot trace it
                return x
            return self.conv(x).mean(dim=(2, 3))

    x = torch.randn(1, 3, 16, 16)
    got = explainers.explain(Untraceable().eval(), x, "occlusion", 0, window=4, stride=4)
    assert got.extras["incremental"] == [False] and torch.isfinite(got.maps).all()


def test_one_window_chunks_leave_the_clean_activations_clean() -> None:
    """A chunk of one copy once pasted into a view of the clean activations, changing every later window."""
    model = resnet(2)
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    whole = explainers.explain(model, x, "occlusion", 3, window=8, stride=8, incremental=False)
    single = explainers.explain(model, x, "occlusion", 3, window=8, stride=8, batch_size=1)
    assert single.extras["incremental"] == [True]
    torch.testing.assert_close(single.maps, whole.maps, rtol=1e-7, atol=1e-9)


def test_a_graph_in_training_mode_is_not_cut() -> None:
    """gradient_net hands a training-mode network back as given; cutting it would run BatchNorm on batch statistics."""
    net = fx.symbolic_trace(resnet(3).float()).train()
    running = [b.clone() for b in net.buffers()]
    assert incremental.plan_of(net) is None
    got = explainers.explain(net, torch.randn(1, 3, 48, 48), "occlusion", 0, window=16, stride=16)
    assert got.extras["incremental"] == [False] and all(m.training for m in net.modules())
    assert all(torch.equal(a, b) for a, b in zip(running, net.buffers(), strict=True))
