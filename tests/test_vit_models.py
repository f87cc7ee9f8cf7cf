"""Vision transformers end to end: token grids, the automatic layer, attention rollouts against
hand-written references, Hugging Face directories (saved and reloaded; refused with clear
messages) and torchvision ViT checkpoints sized by their shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision
from safetensors.torch import save_file

import explainers
import models
from explainers.errors import ExplainerError
from explainers.layers import auto_layer, layer_shapes
from explainers.tokens import Grid, grid_of, patch_size
from tests.test_explainers_support import relative_error, sample_batch, state_of
from tests.vit_support import CLASSES, VIT_SIZE, Logits, perturbed, save_hf_vit, tiny_hf_vit, tiny_swin, tiny_vit

LAST_LN1 = "encoder.layers.encoder_layer_2.ln_1"


@pytest.mark.parametrize(("shape", "size", "patch", "expected"), [
    ((2, 197, 768), (224, 224), 16, Grid("tokens", 14, 14, 768, 1)),  # ViT-B/16: class token
    ((2, 198, 384), (224, 224), 16, Grid("tokens", 14, 14, 384, 2)),  # DeiT distilled: class + distillation
    ((1, 261, 64), (224, 224), 14, Grid("tokens", 16, 16, 64, 5)),  # DINOv2 with 4 registers
    ((1, 141, 32), (224, 160), 16, Grid("tokens", 14, 10, 32, 1)),  # non-square
    ((1, 3136, 96), (224, 224), 4, Grid("tokens", 56, 56, 96, 0)),  # HF Swin stage 1, no class token
    ((1, 49, 768), (224, 224), 4, Grid("tokens", 7, 7, 768, 0)),  # HF Swin stage 4 (stride 32 = 4 * 2^3)
    ((1, 7, 7, 768), (224, 224), 4, Grid("channels_last", 7, 7, 768)),  # torchvision Swin
    ((1, 512, 2, 2), (48, 64), None, Grid("channels_first", 2, 2, 512)),  # ResNet layer4, ceil strides
    ((1, 56, 56, 56), (224, 224), None, Grid("channels_first", 56, 56, 56)),  # ambiguous: channels first wins
    ((1, 4, 6, 6), (8, 8), None, Grid("channels_first", 6, 6, 4)),  # valid-padding 3x3 convolution
])
def test_grids_are_inferred(shape, size, patch, expected) -> None:
    assert grid_of(shape, size, patch) == expected


@pytest.mark.parametrize("shape", [(2, 1000), (2, 500, 768), (2, 768, 1), (2, 3, 4, 5, 6)])
def test_non_grids_are_recognised(shape) -> None:
    assert grid_of(shape, (224, 224), 16) is None


def test_token_map_drops_the_prefix_in_row_major_order() -> None:
    grid = Grid("tokens", 2, 3, 4, prefix=2)
    tokens = torch.arange(2 * 8 * 4, dtype=torch.float32).view(2, 8, 4)
    expected = tokens[:, 2:].view(2, 2, 3, 4).permute(0, 3, 1, 2)
    assert torch.equal(grid.to_map(tokens), expected)
    assert "2 non-patch tokens dropped" in grid.describe()


def test_patch_size_is_read_from_the_patch_embedding() -> None:
    assert patch_size(tiny_vit()) == 8
    assert patch_size(tiny_swin()) == 4
    assert patch_size(torchvision.models.resnet18()) is None


def test_a_layer_that_is_no_grid_is_refused_plainly() -> None:
    with pytest.raises(ExplainerError, match="not a .B, C, H, W. feature map of the 48x48 image"):
        explainers.explain(tiny_vit(), sample_batch(1, (1, 3, VIT_SIZE, VIT_SIZE)), "grad_cam", None, "heads.head")


def test_layer_list_shows_each_candidates_grid() -> None:
    infos = {i.name: i for i in layer_shapes(tiny_vit(), torch.zeros(1, 3, VIT_SIZE, VIT_SIZE))}
    assert infos[LAST_LN1].grid == Grid("tokens", 6, 6, 32, 1)
    assert infos[LAST_LN1].describe() == f"{LAST_LN1}  (32 x 6x6 (tokens, 1 non-patch token dropped))"
    assert infos["heads.head"].grid is None


def test_default_layer_of_a_vit_is_the_last_blocks_first_norm() -> None:
    """Measured: later norms (the last block's ln_2, the final ln) pass only the class token on, so
    their patch tokens get no gradient and Grad-CAM there is blank."""
    model = tiny_vit()
    x = sample_batch(5, (2, 3, VIT_SIZE, VIT_SIZE))
    assert auto_layer(model, x[:1]) == LAST_LN1
    assert explainers.explain(model, x, "grad_cam").layer == LAST_LN1
    blank = explainers.explain(model, x, "grad_cam", None, "encoder.layers.encoder_layer_2.ln_2")
    assert blank.extras["all_zero"].all()
    assert auto_layer(Logits(tiny_hf_vit()), x[:1]) == "model.vit.layers.2.layernorm_before"


def test_default_layer_of_a_fresh_torchvision_vit_is_found_by_name() -> None:
    """torchvision zero-initialises ViT's head, so no gradient reaches any layer: the rule falls back
    to the last block's first norm by its name."""
    from torchvision.models.vision_transformer import VisionTransformer

    fresh = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32).eval()
    assert auto_layer(fresh, torch.zeros(1, 3, 32, 32)) == "encoder.layers.encoder_layer_1.ln_1"


def test_default_layer_of_swin_is_its_pooled_feature_map() -> None:
    layer = auto_layer(tiny_swin(), torch.zeros(1, 3, 48, 64))
    assert layer == "permute"  # the final norm's (B, h, w, C) output, permuted before the pooling


def torch_attention(block, normed):
    """torch's own attention output and weights (need_weights=True), (B, heads, T, T)."""
    return block.self_attention(normed, normed, normed, need_weights=True, average_attn_weights=False)


def hand_attention(block, normed):
    """Self-attention written out: softmax(q k^T / sqrt(d)) v, so the weights are inside the graph."""
    mha = block.self_attention
    q, k, v = (normed @ w.T + b for w, b in zip(mha.in_proj_weight.chunk(3), mha.in_proj_bias.chunk(3)))
    split = [t.view(t.shape[0], t.shape[1], mha.num_heads, -1).transpose(1, 2) for t in (q, k, v)]
    weights = torch.softmax(split[0] @ split[1].transpose(-1, -2) / split[0].shape[-1] ** 0.5, dim=-1)
    joined = (weights @ split[2]).transpose(1, 2).reshape(normed.shape)
    return mha.out_proj(joined), weights


def vit_forward_with_weights(model, x, attention=torch_attention):
    """torchvision ViT by hand, block by block: (logits, [A_l (B, heads, T, T)])."""
    tokens = model._process_input(x)
    tokens = torch.cat([model.class_token.expand(x.shape[0], -1, -1), tokens], dim=1) + model.encoder.pos_embedding
    weights = []
    for block in model.encoder.layers:
        attended, a = attention(block, block.ln_1(tokens))
        weights.append(a)
        tokens = tokens + attended
        tokens = tokens + block.mlp(block.ln_2(tokens))
    return model.heads(model.encoder.ln(tokens)[:, 0]), weights


def test_attention_rollout_matches_a_hand_written_reference() -> None:
    """Abnar & Zuidema 2020: A-hat_l = 0.5 mean_heads(A_l) + 0.5 I, R = A-hat_L ... A-hat_1, the class
    token's row over the patches; by NumPy loops over torch's own attention weights."""
    model = tiny_vit()
    x = sample_batch(5, (2, 3, VIT_SIZE, VIT_SIZE))
    before = state_of(model)
    ours = explainers.explain(model, x, "attention_rollout")
    assert state_of(model) == before
    with torch.no_grad():
        logits, weights = vit_forward_with_weights(model, x)
    torch.testing.assert_close(logits, model(x))  # the hand-written forward is the model
    for item in range(2):
        rollout = np.eye(37)
        for a in weights:
            hat = 0.5 * a[item].mean(dim=0).double().numpy() + 0.5 * np.eye(37)
            rollout = hat @ rollout
        expected = torch.from_numpy(rollout[0, 1:].reshape(6, 6))
        assert relative_error(ours.raw[item : item + 1], expected[None]) <= 1e-5
    assert ours.maps.shape == (2, VIT_SIZE, VIT_SIZE) and ours.raw.amax() > 0


def test_gradient_rollout_matches_a_hand_written_reference() -> None:
    """Chefer et al. 2021: A-bar = mean_heads((dY/dA * A)^+), R = I, R += A-bar R per layer."""
    model = tiny_vit()
    x = sample_batch(5, (2, 3, VIT_SIZE, VIT_SIZE))
    targets = [2, 5]
    ours = explainers.explain(model, x, "gradient_rollout", targets)
    logits, weights = vit_forward_with_weights(model, x, hand_attention)
    torch.testing.assert_close(logits, model(x))
    grads = torch.autograd.grad(logits[torch.arange(2), targets].sum(), weights)
    for item in range(2):
        relevance = np.eye(37)
        for a, g in zip(weights, grads):
            bar = np.maximum(g[item].double().numpy() * a[item].detach().double().numpy(), 0).mean(axis=0)
            relevance = relevance + bar @ relevance
        expected = torch.from_numpy(relevance[0, 1:].reshape(6, 6))
        assert relative_error(ours.raw[item : item + 1], expected[None]) <= 1e-4
    assert ours.targets == targets
    other = explainers.explain(model, x, "gradient_rollout", [0, 0])
    assert relative_error(other.raw, ours.raw) > 1e-3, "class-specific"


def test_attention_map_is_one_layers_class_token_row() -> None:
    model = tiny_vit()
    x = sample_batch(5, (2, 3, VIT_SIZE, VIT_SIZE))
    with torch.no_grad():
        _, weights = vit_forward_with_weights(model, x)
    head = explainers.explain(model, x, "attention_map", block=1, head=1)
    torch.testing.assert_close(head.raw, weights[1][:, 1, 0, 1:].reshape(2, 6, 6))
    mean = explainers.explain(model, x, "attention_map")
    torch.testing.assert_close(mean.raw, weights[-1].mean(dim=1)[:, 0, 1:].reshape(2, 6, 6))
    with pytest.raises(ExplainerError, match="block must be between -3 and 2"):
        explainers.explain(model, x, "attention_map", block=3)


def test_attention_methods_refuse_a_cnn_plainly() -> None:
    model = torchvision.models.resnet18(num_classes=3).eval()
    with pytest.raises(ExplainerError, match="needs a vision transformer"):
        explainers.explain(model, sample_batch(1, (1, 3, 32, 32)), "attention_rollout")


def test_gradient_and_perturbation_methods_run_unchanged_on_a_vit() -> None:
    model = tiny_vit()
    x = sample_batch(5, (1, 3, VIT_SIZE, VIT_SIZE))
    ig = explainers.explain(model, x, "integrated_gradients", 2, steps=32, tolerance=0)
    gap = float(ig.extras["score"] - ig.extras["baseline_score"])
    assert abs(float(ig.extras["delta"][0])) <= 0.05 * abs(gap)  # completeness holds on the ViT
    for name in ("saliency", "input_x_gradient", "smoothgrad", "vargrad"):
        assert not explainers.explain(model, x, name, 2, **({"samples": 3} if "grad" in name[-4:] else {})).extras[
            "all_zero"].any()


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_vit")
    return folder, save_hf_vit(folder)


def test_a_saved_hf_vit_gives_the_same_logits_and_maps_as_in_memory(hf_dir) -> None:
    folder, original = hf_dir
    loaded = models.load_image_model(str(folder))
    assert loaded.labels == [f"kind {i}" for i in range(CLASSES)] and loaded.input_hw == (VIT_SIZE, VIT_SIZE)
    image = models.load_sample("cat")
    x = loaded.preprocess(image)
    from transformers import AutoImageProcessor

    expected_x = AutoImageProcessor.from_pretrained(folder)(images=image.convert("RGB"), return_tensors="pt")
    torch.testing.assert_close(x, expected_x["pixel_values"], rtol=0, atol=1e-5)  # the processor's preprocessing
    memory = Logits(original)
    torch.testing.assert_close(loaded.net(x), memory(x), rtol=0, atol=1e-5)
    layer = loaded.default_layer
    assert layer == "model.vit.layers.2.layernorm_before"
    for name in ("grad_cam", "score_cam", "gradient_rollout", "attention_rollout", "saliency"):
        ours = explainers.explain(loaded.net, x, name, 3, layer)
        reference = explainers.explain(memory, x, name, 3, layer)
        assert relative_error(ours.maps, reference.maps) <= 1e-4, name
        assert ours.maps.abs().amax() > 0


def hf_config(folder) -> dict:
    return json.loads((folder / "config.json").read_text())


def test_hf_directories_are_refused_with_clear_messages(hf_dir, tmp_path) -> None:
    folder, _ = hf_dir
    files = {p.name: p.read_bytes() for p in folder.iterdir()}

    def variant(name: str, drop: tuple[str, ...] = (), config: dict | None = None):
        target = tmp_path / name
        target.mkdir()
        for file, data in files.items():
            if file not in drop:
                (target / file).write_bytes(data)
        if config is not None:
            (target / "config.json").write_text(json.dumps(config))
        return str(target)

    cases = [
        (variant("no_config", drop=("config.json",)), "no config.json: it is not a Hugging Face model directory"),
        (variant("remote", config={**hf_config(folder), "auto_map": {"AutoModel": "evil.Model"}}), "custom code"),
        (variant("text", config={**hf_config(folder), "architectures": ["BertForSequenceClassification"]}),
         "not an image classifier"),
        (variant("no_weights", drop=("model.safetensors",)), "has no weights"),
        (variant("no_processor", drop=("preprocessor_config.json",)), "no preprocessor_config.json"),
        (variant("wider", config={**hf_config(folder), "hidden_size": 64}), "Cannot load the model"),
    ]
    for path, message in cases:
        with pytest.raises(ExplainerError, match=message):
            models.load_image_model(path)


def test_hf_weights_without_the_head_are_refused(tmp_path) -> None:
    model = tiny_hf_vit()
    model.save_pretrained(tmp_path)
    from transformers import ViTImageProcessor

    ViTImageProcessor().save_pretrained(tmp_path)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("classifier")}
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ExplainerError, match="the head would be random"):
        models.load_image_model(str(tmp_path))


def test_a_torchvision_vit_checkpoint_of_other_sizes_is_built_from_its_shapes(tmp_path) -> None:
    """A user's ViT: torchvision's VisionTransformer, sized by the checkpoint (64 wide: 1 head of 64)."""
    torch.manual_seed(0)
    from torchvision.models.vision_transformer import VisionTransformer

    original = perturbed(VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=1, hidden_dim=64,
                                           mlp_dim=96, num_classes=4))
    path = tmp_path / "vit.safetensors"
    save_file(original.state_dict(), str(path))
    loaded = models.load_torchvision_model("vit_b_16", path)
    assert loaded.input_hw == (64, 64) and loaded.labels == [f"class {i}" for i in range(4)]
    x = sample_batch(5, (1, 3, 64, 64))
    torch.testing.assert_close(loaded.net(x), original(x))
    assert loaded.default_layer == "encoder.layers.encoder_layer_1.ln_1"
    with pytest.raises(ExplainerError, match="does not fit swin_t"):
        models.load_torchvision_model("swin_t", path)


@pytest.mark.parametrize("method", [m.name for m in explainers.methods("image", "attention")] + ["grad_cam"])
@pytest.mark.parametrize("grad_enabled", [True, False])
def test_vit_methods_leave_no_trace(method, grad_enabled) -> None:
    """Hooks removed, flags restored, no graph kept, on success and when the forward raises."""
    model = tiny_vit()
    model.train()
    model.encoder.layers[0].eval()
    before = state_of(model)
    x = sample_batch(5, (2, 3, VIT_SIZE, VIT_SIZE))
    with torch.set_grad_enabled(grad_enabled):
        result = explainers.explain(model, x, method)
        assert torch.is_grad_enabled() == grad_enabled
    assert state_of(model) == before
    assert result.maps.grad_fn is None and not result.maps.requires_grad
    boom = model.encoder.layers[1].register_forward_hook(lambda *_: (_ for _ in ()).throw(RuntimeError("boom")))
    try:
        with pytest.raises(RuntimeError, match="boom"):
            explainers.explain(model, x, method)
    finally:
        boom.remove()
    assert state_of(model) == before


def test_attention_maps_ask_for_eager_attention_when_sdpa_returns_none() -> None:
    model = tiny_hf_vit()
    model.config._attn_implementation = "sdpa"
    with pytest.raises(ExplainerError, match='attn_implementation="eager"'):
        explainers.explain(Logits(model), sample_batch(5, (1, 3, VIT_SIZE, VIT_SIZE)), "attention_rollout")



@pytest.mark.parametrize("build, offered", [
    (lambda: torchvision.models.resnet18(num_classes=CLASSES), False), (tiny_swin, False), (tiny_vit, True),
    (lambda: Logits(tiny_hf_vit()), True)], ids=["resnet18", "swin", "vit", "hf-vit"])
def test_attention_maps_are_offered_exactly_where_they_run(build, offered):
    """The menus' structural check (Method.supports_image_model) agrees with running the method:
    where it is offered it gives a map, where it is not the method itself refuses the model."""
    from ui.methods import image_methods, not_offered

    net = build().eval()
    x = torch.rand(1, 3, VIT_SIZE, VIT_SIZE)
    attention = [m.name for m in explainers.methods("image") if m.family == "attention"]
    assert attention
    for name in attention:
        assert explainers.method(name).supports_image_model(net) is offered
        if offered:
            assert explainers.explain(net, x, name).maps.shape == (1, VIT_SIZE, VIT_SIZE)
        else:
            with pytest.raises(ExplainerError, match="vision transformer"):
                explainers.explain(net, x, name)
    assert (set(attention) <= set(image_methods(net))) is offered
    assert "grad_cam" in image_methods(net)
    assert (not_offered(net) is None) is offered
