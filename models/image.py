"""Image classifiers: the bundled EfficientNet-Lite0, the user's torchvision models and local
Hugging Face image-classification directories.

``load_image_model(name)`` returns an :class:`ImageModel`: the network in eval mode (a plain
``x -> logits`` module), its preprocessing, its labels and its target layers. Checkpoints are
read only as safetensors or with ``torch.load(weights_only=True)``; Hugging Face directories load
without remote code (:mod:`models.hf_dirs`); nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.models._meta import _IMAGENET_CATEGORIES
from torchvision.models.vision_transformer import VisionTransformer

from explainers.errors import ExplainerError
from explainers.layers import LayerInfo, layer_shapes, pick_auto_layer
from models.checkpoints import load_state_dict_file, match_state_dict, vit_sizes
from models.hf_dirs import LOAD_ERRORS, checked_config, load_weights

IMAGENET_LABELS: list[str] = list(_IMAGENET_CATEGORIES)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_FRACTION = 0.875


@dataclass(frozen=True)
class Normalisation:
    """``x = (rgb / scale - mean) / std`` per channel, with ``rgb`` in 0..255."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 255.0

    def apply(self, rgb: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1) / self.scale
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return ((x - mean) / std).unsqueeze(0)


TF_SCALING = Normalisation(mean=(127 / 255,) * 3, std=(128 / 255,) * 3)
"""TensorFlow-style ``(x - 127) / 128`` on 0..255 RGB, as EfficientNet-Lite was trained."""
TORCHVISION_SCALING = Normalisation(mean=IMAGENET_MEAN, std=IMAGENET_STD)


@dataclass
class ImageModel:
    """A classifier ready to explain: ``net`` (eval mode), preprocessing, labels and layers."""

    name: str
    net: nn.Module
    labels: list[str]
    normalisation: Normalisation
    input_size: int | tuple[int, int] = 224
    description: str = ""
    resizer: Callable[[Image.Image], np.ndarray] | None = None
    """The picture the model sees from a PIL image (default: the ImageNet evaluation crop)."""
    _layers: list[LayerInfo] = field(init=False, repr=False)
    _default_layer: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Probed once here, before the object is shared: a probe forward later could run while
        # another session's explainer has hooks on the same network.
        self._layers = layer_shapes(self.net, self.example_input())
        self._default_layer = pick_auto_layer(self._layers, self.net, self.example_input())

    @property
    def input_hw(self) -> tuple[int, int]:
        """(height, width) of the model's input."""
        size = self.input_size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def resize(self, image: Image.Image) -> np.ndarray:
        """The picture the model sees, as uint8 HxWx3.

        Standard ImageNet evaluation crop (as TF's EfficientNet and torchvision do): shorter side
        bicubically resized to ``input_size / 0.875`` (256 for 224), then the central
        ``input_size`` square; or the model's own ``resizer`` (a Hugging Face image processor's).
        """
        resizer = getattr(self, "resizer", None)  # also called unbound on a namespace (ui.job_results)
        if resizer is not None:
            return resizer(image.convert("RGB"))
        image = image.convert("RGB")
        width, height = image.size
        short = round(self.input_size / CROP_FRACTION)
        ratio = short / min(width, height)
        new = (max(short, round(width * ratio)), max(short, round(height * ratio)))
        image = image.resize(new, Image.Resampling.BICUBIC)
        left = (new[0] - self.input_size) // 2
        top = (new[1] - self.input_size) // 2
        image = image.crop((left, top, left + self.input_size, top + self.input_size))
        return np.array(image, dtype=np.uint8)

    def to_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """Normalise an already resized uint8 HxWx3 array into a (1, 3, H, W) float tensor."""
        return self.normalisation.apply(rgb)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """PIL image -> (1, 3, input_size, input_size) tensor, as the model was trained."""
        return self.to_tensor(self.resize(image))

    def example_input(self) -> torch.Tensor:
        return torch.zeros(1, 3, *self.input_hw)

    def layers(self) -> list[LayerInfo]:
        """Every named module with its output shape for a real-sized input (probed at load)."""
        return self._layers

    @property
    def default_layer(self) -> str:
        """The automatic target layer (:func:`explainers.layers.pick_auto_layer`): the last spatial
        feature map before global pooling; for a ViT-like model its last block's first norm."""
        return self._default_layer


@dataclass(frozen=True)
class ModelEntry:
    """A model the registry can load, and whether it works on this machine without a download."""

    name: str
    description: str
    offline: bool
    reason: str = ""


LITE0_DESCRIPTION = "EfficientNet-Lite0, ImageNet-1k (bundled weights, 4.7 M parameters)"


def _efficientnet_lite0() -> ImageModel:
    from models.efficientnet_lite import efficientnet_lite0

    return ImageModel(
        name="efficientnet_lite0",
        net=efficientnet_lite0(),
        labels=IMAGENET_LABELS,
        normalisation=TF_SCALING,
        description=LITE0_DESCRIPTION,
    )


BUNDLED: dict[str, tuple[str, Callable[[], ImageModel]]] = {
    "efficientnet_lite0": (LITE0_DESCRIPTION, _efficientnet_lite0)
}
DEFAULT_IMAGE_MODEL = "efficientnet_lite0"


def torchvision_architectures() -> list[str]:
    """Names of torchvision's image classification architectures."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def _cached_weights_path(arch: str) -> Path | None:
    """torchvision's pretrained file for ``arch`` if it is already in the local torch cache."""
    try:
        weights = torchvision.models.get_model_weights(arch).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    return path if path.is_file() else None


def image_models() -> list[ModelEntry]:
    """The bundled models, then torchvision architectures (offline only with cached weights)."""
    entries = [ModelEntry(name, description, True) for name, (description, _) in BUNDLED.items()]
    for arch in torchvision_architectures():
        cached = _cached_weights_path(arch) is not None
        entries.append(
            ModelEntry(
                f"torchvision:{arch}",
                f"torchvision {arch}",
                cached,
                "" if cached else "pretrained weights not in the local torch cache: bring a checkpoint",
            )
        )
    return entries


def _final_linear(state: dict[str, torch.Tensor]) -> int | None:
    """Class count read off the last 2-D weight in a state_dict (the classifier)."""
    weights = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
    return int(weights[-1].shape[0]) if weights else None


def load_torchvision_model(
    arch: str,
    checkpoint: str | Path | None = None,
    num_classes: int | None = None,
    labels: Sequence[str] | None = None,
) -> ImageModel:
    """A torchvision architecture with weights from ``checkpoint`` or from the local torch cache.

    ``num_classes`` defaults to what the checkpoint's classifier holds; ``labels`` to ImageNet's
    names for 1000 classes and ``class i`` otherwise.
    """
    if arch not in torchvision_architectures():
        raise ExplainerError(
            f"torchvision has no classification architecture named {arch!r}. "
            f"Examples: resnet18, resnet50, mobilenet_v2, efficientnet_b0, convnext_tiny."
        )
    if checkpoint is None:
        path = _cached_weights_path(arch)
        if path is None:
            raise ExplainerError(
                f"torchvision's pretrained weights for {arch} are not in the local torch cache "
                f"({torch.hub.get_dir()}/checkpoints) and cannot be downloaded here. "
                "Upload a checkpoint (.safetensors, or a .pt/.pth state_dict) instead."
            )
        checkpoint = path
    state = load_state_dict_file(checkpoint)
    found = _final_linear(state)
    classes = num_classes or found or 1000
    if found is not None and num_classes is not None and found != num_classes:
        raise ExplainerError(
            f"Wrong class count: the checkpoint's classifier has {found} classes, "
            f"but {num_classes} were asked for."
        )
    try:
        net = torchvision.models.get_model(arch, weights=None, num_classes=classes)
    except (TypeError, ValueError) as err:
        raise ExplainerError(f"Cannot build {arch} with {classes} classes: {err}") from None
    input_size = 224
    sizes = vit_sizes(state) if isinstance(net, VisionTransformer) else None
    if sizes is not None and not _fits(net, state):
        net = VisionTransformer(**sizes, num_classes=classes)  # a ViT of other sizes: built as the checkpoint says
        arch = f"{arch} ({sizes['num_layers']} layers, width {sizes['hidden_dim']}, patch {sizes['patch_size']})"
    if isinstance(net, VisionTransformer):
        input_size = net.image_size  # torchvision's ViT takes exactly its own image size
    match_state_dict(net, state, arch)
    if labels is None:
        labels = IMAGENET_LABELS if classes == 1000 else [f"class {i}" for i in range(classes)]
    if len(labels) != classes:
        raise ExplainerError(f"{len(labels)} labels given for a model with {classes} classes.")
    return ImageModel(
        name=f"torchvision:{arch}",
        net=net.eval(),
        labels=list(labels),
        normalisation=TORCHVISION_SCALING,
        input_size=input_size,
        description=f"torchvision {arch} ({Path(checkpoint).name})",
    )


def _fits(net: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    own = net.state_dict()
    return own.keys() == state.keys() and all(own[k].shape == state[k].shape for k in own)


class HuggingFaceLogits(nn.Module):
    """A Hugging Face image classifier as a plain ``x -> logits`` module (``ModelOutput`` unwrapped)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def _processor_resizer(processor) -> Callable[[Image.Image], np.ndarray]:
    """The image processor's own resizing and cropping, without its rescaling and normalisation."""
    def resize(image: Image.Image) -> np.ndarray:
        pixels = processor(images=image, do_rescale=False, do_normalize=False, return_tensors="pt")["pixel_values"][0]
        return np.asarray(pixels.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0))

    return resize


def load_hf_image_model(path: str | Path) -> ImageModel:
    """A local Hugging Face image-classification directory (config, weights, image processor).

    Preprocessing is the directory's image processor: its resize and crop (:func:`_processor_resizer`),
    then ``(rgb * rescale_factor - mean) / std``. Attention is eager, so attention maps can be read.
    Refused with a clear message as :mod:`models.hf_dirs` says, or without a preprocessor_config.json.
    """
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    path = Path(path).expanduser().resolve()
    config = checked_config(path, "ForImageClassification", "an image classifier", ("preprocessor_config.json",))
    if not (path / "preprocessor_config.json").is_file():
        raise ExplainerError(f"{path} has no preprocessor_config.json: save the image processor next to the model "
                             "(processor.save_pretrained), so images are prepared as the model was trained.")
    try:
        processor = AutoImageProcessor.from_pretrained(path, trust_remote_code=False)
    except LOAD_ERRORS as err:
        raise ExplainerError(f"Cannot read the image processor in {path}: {err}") from err
    net = load_weights(path, AutoModelForImageClassification, attn_implementation="eager")
    resizer = _processor_resizer(processor)
    height, width = resizer(Image.new("RGB", (97, 89))).shape[:2]
    scale = 1.0 / processor.rescale_factor if getattr(processor, "do_rescale", True) else 1.0
    if getattr(processor, "do_normalize", True):
        mean, std = tuple(processor.image_mean), tuple(processor.image_std)
    else:
        mean, std = (0.0,) * 3, (1.0,) * 3
    labels = [str(config.id2label.get(i, f"class {i}")) for i in range(config.num_labels)]
    return ImageModel(
        name=str(path),
        net=HuggingFaceLogits(net).eval(),
        labels=labels,
        normalisation=Normalisation(mean, std, scale),
        input_size=(height, width),
        description=f"Hugging Face {', '.join(config.architectures)} ({path.name})",
        resizer=resizer,
    )


def load_image_model(name: str = DEFAULT_IMAGE_MODEL, checkpoint: str | Path | None = None, **kwargs) -> ImageModel:
    """Load a bundled model by name, ``torchvision:<arch>`` with an optional checkpoint, or the path
    of a local Hugging Face image-classification directory."""
    if name in BUNDLED and checkpoint is None:
        return BUNDLED[name][1]()
    if checkpoint is None and not name.startswith("torchvision:") and Path(name).expanduser().is_dir():
        return load_hf_image_model(name)
    arch = name.removeprefix("torchvision:")
    return load_torchvision_model(arch, checkpoint, **kwargs)
