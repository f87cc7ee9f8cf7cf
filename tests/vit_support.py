"""Small random-init vision transformers for the tests: torchvision ViT and Swin, a Hugging Face ViT.

Random init leaves transformers near-degenerate (torchvision zero-initialises ViT's head, LayerNorms
start as the identity), so :func:`perturbed` randomises every LayerNorm's affine parameters and every
linear head: logits then vary with the input and across classes, and the maps are not blank.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.swin_transformer import SwinTransformer
from torchvision.models.vision_transformer import VisionTransformer

CLASSES = 7
VIT_SIZE = 48  # torchvision's ViT takes its one image size; 6x6 patches of 8
SWIN_SIZE = (48, 64)  # non-square: 12x16 patches of 4, then 6x8


def perturbed(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every LayerNorm's weight in U(0.5, 1.5) and bias N(0, 0.3); every zero-initialised linear
    layer re-drawn N(0, 0.2); eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm) and module.elementwise_affine:
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(0.3 * torch.randn(module.bias.shape, generator=generator))
            elif isinstance(module, nn.Linear) and not module.weight.any():
                module.weight.copy_(0.2 * torch.randn(module.weight.shape, generator=generator))
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
    return model.eval()


def tiny_vit(seed: int = 0) -> VisionTransformer:
    torch.manual_seed(seed)
    return perturbed(VisionTransformer(image_size=VIT_SIZE, patch_size=8, num_layers=3, num_heads=2, hidden_dim=32,
                                       mlp_dim=64, num_classes=CLASSES), seed)


def tiny_swin(seed: int = 0) -> SwinTransformer:
    torch.manual_seed(seed)
    return perturbed(SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 2],
                                     window_size=[4, 4], num_classes=CLASSES), seed)


def tiny_hf_vit_config(**overrides):
    """A 3-layer Hugging Face ViT configuration for a 48x48 input (6x6 patches of 8), eager attention."""
    from transformers import ViTConfig

    settings = dict(image_size=VIT_SIZE, patch_size=8, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                    intermediate_size=64, num_labels=CLASSES, id2label={i: f"kind {i}" for i in range(CLASSES)},
                    label2id={f"kind {i}": i for i in range(CLASSES)}, architectures=["ViTForImageClassification"])
    settings.update(overrides)
    config = ViTConfig(**settings)
    config._attn_implementation = "eager"
    return config


def tiny_hf_vit(seed: int = 0, **overrides):
    from transformers import ViTForImageClassification

    torch.manual_seed(seed)
    return perturbed(ViTForImageClassification(tiny_hf_vit_config(**overrides)), seed)


def save_hf_vit(folder, seed: int = 0, **overrides):
    """A tiny HF ViT saved as a local directory (config, safetensors, image processor); the model."""
    from transformers import ViTImageProcessor

    model = tiny_hf_vit(seed, **overrides)
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": VIT_SIZE, "width": VIT_SIZE}).save_pretrained(folder)
    return model


class Logits(nn.Module):
    """A Hugging Face classifier as a plain ``x -> logits`` module (for reference libraries)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def save_user_vit_checkpoint(path) -> nn.Module:
    """A user's small torchvision ViT (2 layers, 64 wide, 1 head, 64x64 input, patch 16, 5 classes),
    saved as safetensors; loading builds it from the shapes (models.checkpoints.vit_sizes)."""
    from safetensors.torch import save_file

    torch.manual_seed(1)
    net = perturbed(VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=1, hidden_dim=64,
                                      mlp_dim=96, num_classes=5), seed=1)
    save_file(net.state_dict(), str(path))
    return net
