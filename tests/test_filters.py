"""Feature maps and activation maximisation: exact layer outputs, Grad-CAM channel weights against
a plain-hook reference, optimised images that win their own channel, batching that changes
nothing, hygiene after success and failure, clear refusals; and their figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import explainers
from explainers import ExplainerError, activation_max
from explainers.activation_max import MAX_UNITS, unit_activations
from figures.filters import channel_grid, optimised_grid
from tests.test_explainers_hygiene import mixed_state_model
from tests.test_explainers_support import OutputProbe, sample_batch, state_of, trained_looking

models = pytest.importorskip("models")

QUICK_MAX = {"size": 48, "steps": 10}


@pytest.fixture(scope="module")
def lite0():
    return models.load_image_model("efficientnet_lite0")


@pytest.fixture(scope="module")
def photos(lite0) -> torch.Tensor:
    return torch.cat([lite0.preprocess(models.load_sample(name)) for name in ("cat", "coffee")])


def norm(model) -> dict:
    return {"mean": model.normalisation.mean, "std": model.normalisation.std}


def hooked_output(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """The layer's output from a plain forward hook on an ordinary no-grad forward."""
    seen = []
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda _m, _i, out: seen.append(out.clone()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[0]


# ---------- feature maps ----------

@pytest.mark.parametrize("layer", ["_blocks.5", "_head_act", "_avg_pooling"])
def test_feature_maps_are_exactly_the_hooked_output(lite0, photos, layer: str) -> None:
    result = explainers.feature_maps(lite0.net, photos, layer)
    expected = hooked_output(lite0.net, layer, photos)
    assert torch.equal(result.activations, expected)
    assert torch.equal(result.scores, expected.mean(dim=(2, 3)))
    ranked = result.scores.gather(1, result.order)
    assert (ranked[:, :-1] >= ranked[:, 1:]).all(), "channels must come highest mean first"
    assert sorted(result.order[0].tolist()) == list(range(result.channels))
    assert result.order[0].tolist() != result.order[1].tolist(), "two photos should rank channels differently"


def test_grad_cam_sort_uses_the_gradient_of_the_target_logit(lite0, photos) -> None:
    layer, target = "_head_act", 281  # tabby cat
    result = explainers.feature_maps(lite0.net, photos, layer, sort="grad_cam", target=target)
    # Independent reference: a plain hook keeping the layer's output in the graph, a full backward.
    module = dict(lite0.net.named_modules())[layer]
    kept = []
    handle = module.register_forward_hook(lambda _m, _i, out: kept.append(out))
    try:
        x = photos.clone().requires_grad_()
        logits = lite0.net(x)
        (grads,) = torch.autograd.grad(logits[:, target].sum(), kept[0])
    finally:
        handle.remove()
    weights = grads.mean(dim=(2, 3))
    torch.testing.assert_close(result.scores, weights, rtol=1e-4, atol=1e-6)
    assert result.targets.tolist() == [target, target]
    assert torch.equal(result.order, weights.argsort(dim=1, descending=True, stable=True))
    by_mean = explainers.feature_maps(lite0.net, photos, layer)
    assert result.order[0, :10].tolist() != by_mean.order[0, :10].tolist()


def test_grad_cam_sort_defaults_to_each_items_top_class(lite0, photos) -> None:
    result = explainers.feature_maps(lite0.net, photos, "_head_act", sort="grad_cam")
    assert [lite0.labels[t] for t in result.targets] == ["tiger cat", "espresso"]


@pytest.mark.parametrize("sort", ["mean", "grad_cam"])
def test_feature_maps_leave_no_trace(sort: str) -> None:
    model = mixed_state_model()
    before = state_of(model)
    probe = OutputProbe(model.fc)
    with torch.no_grad():
        result = explainers.feature_maps(model, sample_batch(0, (2, 3, 64, 80)), "layer3", sort=sort)
        assert not torch.is_grad_enabled()
    assert probe.alive() == 0
    assert state_of(model) == before
    assert not result.activations.requires_grad and not result.scores.requires_grad
    model.layer4[1].armed = True
    with pytest.raises(RuntimeError, match="boom"):
        explainers.feature_maps(model, sample_batch(0, (2, 3, 64, 80)), "layer3", sort=sort)
    assert state_of(model) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer": "_fc"}, "not a (B, C, H, W) feature map"),
        ({"layer": "_dropout"}, "not a (B, C, H, W) feature map"),
        ({"layer": "_blocks.99"}, "No layer named"),
        ({"layer": "_head_act", "sort": "max"}, "sort must be one of"),
        ({"layer": "_head_act", "sort": "grad_cam", "target": 1000}, "out of range"),
        ({"layer": "_head_act", "score": "softmax"}, "score must be one of"),
    ],
)
def test_feature_maps_refuse_clearly(lite0, kwargs: dict, message: str) -> None:
    before = state_of(lite0.net)
    x = torch.zeros(1, 3, 64, 64)
    with pytest.raises(ExplainerError) as caught:
        explainers.feature_maps(lite0.net, x, **kwargs)
    assert message in str(caught.value)
    assert state_of(lite0.net) == before


# ---------- activation maximisation ----------

@pytest.mark.parametrize(("layer", "units"), [("_blocks.5", [0, 7, 21]), ("_head_act", [1, 100, 500])])
def test_optimised_images_win_their_own_channel(lite0, layer: str, units: list[int]) -> None:
    result = explainers.maximise_activation(lite0.net, layer, units, **QUICK_MAX, **norm(lite0))
    assert result.images.shape == (3, 3, 48, 48)
    assert 0 <= result.images.min() and result.images.max() <= 1
    cross = unit_activations(lite0.net, layer, result.inputs, units)  # cross[i, j]: image i, unit j
    torch.testing.assert_close(cross.diagonal(), result.activation)
    noise = torch.rand((8, 3, 48, 48), generator=torch.Generator().manual_seed(5))
    random = unit_activations(lite0.net, layer, (noise - torch.tensor(lite0.normalisation.mean).view(1, 3, 1, 1))
                              / torch.tensor(lite0.normalisation.std).view(1, 3, 1, 1), units)
    for j in range(len(units)):
        others = torch.cat([cross[:j, j], cross[j + 1:, j]])
        own = cross[j, j]
        assert own > random[:, j].max() + 5, (layer, units[j], cross, random)
        assert own > others.max() + 2, (layer, units[j], cross)
    assert (result.history[-1] > result.history[0]).all()


def test_class_logits_when_no_layer(lite0) -> None:
    units = [1, 950]  # goldfish, orange
    result = explainers.maximise_activation(lite0.net, None, units, size=64, steps=10, **norm(lite0))
    with torch.no_grad():
        logits = lite0.net(result.inputs)[:, units]
    torch.testing.assert_close(result.activation, logits.diagonal())
    assert (logits.diagonal() > logits.flip(0).diagonal() + 2).all(), logits


def test_batching_changes_no_image() -> None:
    model = trained_looking("resnet18").double()  # float32 rounding, amplified by Adam, would blur the check
    opts = {"size": 32, "steps": 4, "seed": 3, "mean": (0.5,) * 3, "std": (0.25,) * 3}
    together = explainers.maximise_activation(model, "layer2", [5, 9, 30], **opts)
    alone = explainers.maximise_activation(model, "layer2", [9], **opts)
    assert together.images.dtype == torch.float64
    torch.testing.assert_close(together.images[1:2], alone.images, rtol=0, atol=1e-9)
    assert together.seeds[1] == alone.seeds[0]
    other_seed = explainers.maximise_activation(model, "layer2", [9], **{**opts, "seed": 4})
    assert (other_seed.images - alone.images).abs().max() > 1e-2


def test_channels_last_input_changes_no_image(monkeypatch) -> None:
    model = trained_looking("resnet18").double()  # float64: the layouts differ only in rounding
    opts = {"size": 32, "steps": 4, "seed": 3, "mean": (0.5,) * 3, "std": (0.25,) * 3}
    layouts = []
    handle = model.conv1.register_forward_pre_hook(
        lambda _m, inputs: layouts.append(inputs[0].is_contiguous(memory_format=torch.channels_last)))
    try:
        fast = explainers.maximise_activation(model, "layer2", [5, 9], **opts)
        monkeypatch.setattr(activation_max, "input_layout", lambda _model: torch.contiguous_format)
        plain = explainers.maximise_activation(model, "layer2", [5, 9], **opts)
    finally:
        handle.remove()
    steps = opts["steps"]
    assert layouts == [True] * steps + [False] + [False] * (steps + 1), "optimisation steps run channels_last"
    torch.testing.assert_close(fast.images, plain.images, rtol=0, atol=1e-9)
    assert activation_max.input_layout(nn.Sequential(nn.Flatten(), nn.Linear(12, 2))) == torch.contiguous_format


def test_pre_activation_of_a_relu_layer_is_its_input() -> None:
    model = trained_looking("resnet18")
    relu = model.layer1[0].relu  # used twice per block: the first call (after bn1) is the one recorded
    assert isinstance(relu, nn.ReLU)
    x = sample_batch(0, (2, 3, 64, 64))
    seen = []
    handle = relu.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].clone()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    got = unit_activations(model, "layer1.0.relu", x, [0, 3])
    torch.testing.assert_close(got, seen[0].mean(dim=(2, 3))[:, [0, 3]])
    assert (seen[0][:, [0, 3]] < 0).any(), "the check needs negative pre-activations"
    after = unit_activations(model, "layer1.0.relu", x, [0, 3], pre_activation=False)
    torch.testing.assert_close(after, seen[0].clamp_min(0).mean(dim=(2, 3))[:, [0, 3]])


@pytest.mark.parametrize("fail_in", ["forward", "progress"])
def test_activation_max_leaves_no_trace(fail_in: str) -> None:
    model = mixed_state_model()
    before = state_of(model)
    opts = {"size": 32, "steps": 2, "mean": (0.5,) * 3, "std": (0.25,) * 3}
    result = explainers.maximise_activation(model, "layer3", [0, 1], **opts)
    assert state_of(model) == before and torch.is_grad_enabled()
    assert not result.images.requires_grad and result.images.grad_fn is None
    assert all(p.grad is None for p in model.parameters()), "parameters must get no gradient"

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    if fail_in == "forward":
        model.layer4[1].armed = True
        call = lambda: explainers.maximise_activation(model, None, [0], **opts)  # noqa: E731
        expected = RuntimeError
    else:
        call = lambda: explainers.maximise_activation(model, "layer3", [0], progress=stop, **opts)  # noqa: E731
        expected = KeyboardInterrupt
    with torch.no_grad():
        with pytest.raises(expected):
            call()
        assert not torch.is_grad_enabled()
    assert state_of(model) == before


@pytest.mark.parametrize(
    ("layer", "units", "kwargs", "message"),
    [
        ("layer3", list(range(MAX_UNITS + 1)), {}, f"Too many channels at once: {MAX_UNITS + 1} asked, at most {MAX_UNITS}"),
        ("layer3", [], {}, "at least one channel"),
        ("layer3", [3, 3], {}, "only once"),
        ("layer3", [256], {}, "Unit 256 is out of range: layer 'layer3' has 256 channels"),
        (None, [10], {}, "the model has 10 classes"),
        ("fc", [0], {}, "not (B, C, H, W) channel maps"),
        ("avgpool", [0], {}, None),  # 1x1 maps still have channels: accepted
        ("layer9", [0], {}, "No layer named"),
        ("layer3", [1.5], {}, "whole numbers"),
        ("layer3", [0], {"steps": 0}, "steps must be"),
        ("layer3", [0], {"lr": -1.0}, "lr must be"),
        ("layer3", [0], {"size": 8}, "Image size"),
        ("layer3", [0], {"parameterisation": "cppn"}, "parameterisation must be one of"),
        ("layer3", [0], {"std": (0.0, 1.0, 1.0)}, "std must be positive"),
        ("layer3", [0], {"tv": float("nan")}, "tv must be"),
    ],
)
def test_activation_max_refuses_clearly(layer, units, kwargs, message) -> None:
    model = torchvision.models.resnet18(num_classes=10).eval()
    before = state_of(model)
    opts = {"size": 32, "steps": 1, "mean": (0.5,) * 3, "std": (0.25,) * 3, **kwargs}
    if message is None:
        assert explainers.maximise_activation(model, layer, units, **opts).images.shape == (1, 3, 32, 32)
    else:
        with pytest.raises(ExplainerError) as caught:
            explainers.maximise_activation(model, layer, units, **opts)
        assert message in str(caught.value)
    assert state_of(model) == before


# ---------- figures ----------

def test_channel_grid_has_one_cell_per_channel_with_raw_hover() -> None:
    maps = np.arange(5 * 3 * 4, dtype=np.float32).reshape(5, 3, 4)
    fig = channel_grid(maps, [40, 3, 7, 11, 2], [9.0, 8.0, 7.0, 6.0, 5.0], cols=2)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 5
    np.testing.assert_array_equal(np.asarray(heat[0].z), maps[0])
    assert "channel 40" in heat[0].hovertemplate and "%{z" in heat[0].hovertemplate
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "#40 (mean 9)" and titles[4].startswith("#2")
    assert heat[1].xaxis == "x2" and heat[2].yaxis == "y3"
    domains = [fig.layout[f"xaxis{'' if i == 0 else i + 1}"].domain for i in range(5)]
    assert domains[0] == domains[2] == domains[4] and domains[0][1] <= domains[1][0], "two columns in reading order"
    assert fig.layout.yaxis.autorange == "reversed"
    assert all(t.zmin is None for t in heat), "own scale per map by default"
    shared = channel_grid(maps, [40, 3, 7, 11, 2], shared=True)
    assert {(t.zmin, t.zmax) for t in shared.data} == {(0.0, float(maps.max()))}
    assert sum(bool(t.showscale) for t in shared.data) == 1


def test_optimised_grid_titles_and_bad_shapes() -> None:
    images = np.random.default_rng(0).random((3, 16, 16, 3))
    fig = optimised_grid(images, ["#1", "#2", "#3"], cols=2)
    assert [t.type for t in fig.data] == ["image"] * 3
    assert [a.text for a in fig.layout.annotations] == ["#1", "#2", "#3"]
    with pytest.raises(ExplainerError, match="titles"):
        optimised_grid(images, ["#1"])
    with pytest.raises(ExplainerError, match="N, H, W, 3"):
        optimised_grid(images[..., 0], ["a", "b", "c"])
    with pytest.raises(ExplainerError, match="N, h, w"):
        channel_grid(np.zeros((3, 4)), [1, 2, 3])
    with pytest.raises(ExplainerError, match="at least one"):
        channel_grid(np.zeros((0, 4, 4)), [])
