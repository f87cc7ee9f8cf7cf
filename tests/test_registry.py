"""The model registry: bundled models, preprocessing, labels, layers, user checkpoints."""

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from explainers.errors import ExplainerError
from models import (
    image_models,
    load_image_model,
    load_sample,
    load_torchvision_model,
    sample_names,
)

EXPECTED_TOP1 = {  # offline-assets note: what EfficientNet-Lite0 says on the bundled photos
    "cat": {"tiger cat", "Egyptian cat"},
    "coffee": {"espresso"},
    "rocket": {"missile"},
    "motorcycle": {"moped"},
    "palace": {"palace"},
    "flower": {"daisy"},
    "grace_hopper": {"academic gown"},
    "astronaut": {"football helmet"},
}


@pytest.fixture(scope="module")
def lite0():
    return load_image_model("efficientnet_lite0")


def test_bundled_model_is_eval_with_imagenet_labels(lite0):
    assert not lite0.net.training
    assert len(lite0.labels) == 1000 and lite0.labels[967] == "espresso"
    assert sum(p.numel() for p in lite0.net.parameters()) == 4_652_008


@pytest.mark.parametrize("name", sorted(EXPECTED_TOP1))
def test_top1_on_bundled_photos(lite0, name):
    with torch.no_grad():
        logits = lite0.net(lite0.preprocess(load_sample(name)))
    assert lite0.labels[int(logits.argmax())] in EXPECTED_TOP1[name]


def test_espresso_is_confident(lite0):
    with torch.no_grad():
        prob = lite0.net(lite0.preprocess(load_sample("coffee"))).softmax(-1)[0, 967]
    assert prob > 0.9


def test_tf_scaling_maps_0_and_255(lite0):
    black = lite0.to_tensor(np.zeros((4, 4, 3), np.uint8))
    white = lite0.to_tensor(np.full((4, 4, 3), 255, np.uint8))
    assert torch.allclose(black, torch.full_like(black, -127 / 128))
    assert torch.allclose(white, torch.full_like(white, 1.0))


def test_preprocess_any_size_gives_model_input(lite0):
    for size in [(1, 1), (31, 500), (640, 480)]:
        x = lite0.preprocess(Image.new("RGB", size, (10, 200, 30)))
        assert x.shape == (1, 3, 224, 224)


def test_samples_load_as_rgb():
    assert {"cat", "coffee", "astronaut"} <= set(sample_names())
    for name in sample_names():
        assert load_sample(name).mode == "RGB"
    with pytest.raises(ExplainerError, match="No sample"):
        load_sample("dragon")


def test_head_activation_has_its_own_module(lite0):
    modules = dict(lite0.net.named_modules())
    assert modules["_head_act"] is not modules["_stem_act"]
    assert lite0.default_layer == "_head_act"
    shapes = {info.name: info.shape for info in lite0.layers()}
    assert shapes["_head_act"] == (1, 1280, 7, 7)
    assert shapes["_fc"] == (1, 1000)


def test_default_layer_rule_on_resnet(tmp_path):
    model = load_torchvision_model("resnet18", _save(torchvision.models.resnet18(num_classes=7), tmp_path / "r.pt"))
    assert model.default_layer == "layer4"
    assert len(model.labels) == 7


def test_registry_lists_bundled_and_torchvision():
    entries = {e.name: e for e in image_models()}
    assert entries["efficientnet_lite0"].offline
    assert "torchvision:resnet50" in entries


def _save(net, path):
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(net.state_dict(), str(path))
    else:
        torch.save(net.state_dict(), path)
    return path


def test_user_checkpoint_safetensors_roundtrip(tmp_path):
    net = torchvision.models.resnet18(num_classes=5).eval()
    model = load_torchvision_model("resnet18", _save(net, tmp_path / "r.safetensors"))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.net(x), net(x))


def test_checkpoint_for_other_architecture_is_named(tmp_path):
    path = _save(torchvision.models.mobilenet_v2(num_classes=10), tmp_path / "m.pt")
    with pytest.raises(ExplainerError, match="does not fit resnet18.*missing keys"):
        load_torchvision_model("resnet18", path)


def test_wrong_class_count_is_named(tmp_path):
    path = _save(torchvision.models.resnet18(num_classes=10), tmp_path / "r.pt")
    with pytest.raises(ExplainerError, match="10 classes.*1000"):
        load_torchvision_model("resnet18", path, num_classes=1000)


def test_pickle_payload_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    torch.save({"weight": Payload()}, path)
    assert not marker.exists()
    with pytest.raises(ExplainerError, match="refused"):
        load_torchvision_model("resnet18", path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_garbage_checkpoint_files(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ExplainerError):
        load_torchvision_model("resnet18", path)


def test_bad_safetensors(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x00" * 20)
    with pytest.raises(ExplainerError, match="safetensors"):
        load_torchvision_model("resnet18", path)


def test_unknown_architecture_and_missing_cache():
    with pytest.raises(ExplainerError, match="no classification architecture"):
        load_torchvision_model("resnet9000")
    with pytest.raises(ExplainerError, match="cannot be downloaded"):
        load_torchvision_model("resnet152")
