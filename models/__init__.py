"""Model registry: the bundled image and text classifiers, and the user's own models."""

from models.image import (
    DEFAULT_IMAGE_MODEL,
    ImageModel,
    ModelEntry,
    image_models,
    load_image_model,
    load_torchvision_model,
)
from models.image_input import open_image
from models.samples import load_sample, sample_names
from models.text import TextModel, load_text_model, text_models

DEFAULT_TEXT_MODEL = "multilingual-sentiment"  # models.text.MULTILINGUAL; English models stay listed

__all__ = [
    "DEFAULT_IMAGE_MODEL",
    "DEFAULT_TEXT_MODEL",
    "ImageModel",
    "ModelEntry",
    "image_models",
    "load_image_model",
    "load_sample",
    "load_torchvision_model",
    "open_image",
    "sample_names",
    "TextModel",
    "load_text_model",
    "text_models",
]
