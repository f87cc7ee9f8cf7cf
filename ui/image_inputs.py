"""Choosing a model and a photo (sidebar and top widgets), shared by the Images and Filters pages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

import models
from ui.guard import panel
from ui.image_results import cached_predictions
from ui.resources import Shared, digest, image_model, image_model_from_directory, image_model_from_upload

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
CHECKPOINT_TYPES = ["safetensors", "pt", "pth"]


SOURCES = ["Bundled", "Your torchvision checkpoint", "Your Hugging Face directory"]


def choose_model(key: str = "img") -> Shared:
    """Sidebar: the bundled model, a torchvision architecture (ViT and Swin included) with the user's
    checkpoint, or a local Hugging Face image-classification directory. ``key`` prefixes the widget
    keys, so each page keeps its own choice; the bundled model is used while none is given."""
    with st.sidebar:
        st.subheader("Model")
        source = st.radio("Model source", SOURCES, key=f"{key}_model_source")
        if source == SOURCES[0]:
            names = [e.name for e in models.image_models() if e.offline]
            return image_model(st.selectbox("Model", names, key=f"{key}_model"))
        if source == SOURCES[1]:
            archs = models.image.torchvision_architectures()
            arch = st.selectbox("Architecture", archs, key=f"{key}_arch", index=archs.index("resnet18"),
                                help="A ViT checkpoint of other sizes than the named one is built as its shapes say.")
            upload = st.file_uploader("Checkpoint (.safetensors, .pt, .pth)", type=CHECKPOINT_TYPES,
                                      key=f"{key}_checkpoint")
            if upload is None:
                st.info("Upload a checkpoint for this architecture; the bundled model is used meanwhile.")
                return image_model()
            data = upload.getvalue()
            suffix = "." + upload.name.rsplit(".", 1)[-1].lower()
            with panel("Your checkpoint"):
                return image_model_from_upload(arch, digest(data), data, suffix)
        else:
            folder = st.text_input("Directory (config.json, weights, preprocessor_config.json)",
                                   key=f"{key}_hf_dir").strip()
            if not folder:
                st.info("Type the path of a local Hugging Face image-classification directory; the bundled "
                        "model is used meanwhile.")
                return image_model()
            with panel("Your Hugging Face directory"):
                return image_model_from_directory(folder)
        st.info("Using the bundled model instead.")
        return image_model()


def choose_image() -> tuple[str, bytes | None]:
    """A bundled sample or an uploaded file: (cache key, uploaded bytes or None)."""
    source = st.radio("Image", ["Sample", "Upload"], horizontal=True, key="img_source")
    if source == "Sample":
        name = st.selectbox("Sample photo", models.sample_names(), key="img_sample")
        return f"sample:{name}", None
    upload = st.file_uploader("Your image (PNG, JPEG, WebP, BMP, GIF, TIFF)", type=UPLOAD_TYPES, key="img_upload")
    if upload is None:
        st.info("Upload an image to explain it.")
        st.stop()
    data = upload.getvalue()
    return f"upload:{digest(data)}", data


def choose_picture(model) -> tuple[str, np.ndarray] | None:
    """The chosen photo as the model sees it (uint8 HxWx3) with its cache key; None if unreadable."""
    key, data = choose_image()
    with panel("The image"):
        image = models.open_image(data) if data is not None else models.load_sample(key.split(":", 1)[1])
        return key, model.resize(image)
    return None


@dataclass
class ImageInput:
    """What a page explains: the shared model, the photo (key, uint8 HxWx3, tensor) and its prediction."""

    shared: Shared
    key: str
    rgb: np.ndarray
    x: torch.Tensor
    context: tuple
    probs: np.ndarray


def choose_input() -> ImageInput | None:
    """Model and photo from the widgets, with class probabilities (cached); None if the photo is unreadable."""
    shared = choose_model()
    model = shared.model
    picture = choose_picture(model)
    if picture is None:
        return None
    key, rgb = picture
    x = model.to_tensor(rgb)
    context = (model.name, model.description, key)
    return ImageInput(shared, key, rgb, x, context, cached_predictions(shared, x, context))
