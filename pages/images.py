"""Images page: pick a photo and a model, see what the model predicts."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

import models
from figures.image import photo_figure, topk_bar
from ui.guard import panel
from ui.resources import Shared, digest, image_model, image_model_from_upload

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp"]
CHECKPOINT_TYPES = ["safetensors", "pt", "pth"]


def choose_model() -> Shared:
    """Sidebar: the bundled model, or a torchvision architecture with the user's checkpoint."""
    with st.sidebar:
        st.subheader("Model")
        source = st.radio("Model source", ["Bundled", "Your torchvision checkpoint"], key="img_model_source")
        if source == "Bundled":
            names = [e.name for e in models.image_models() if e.offline]
            return image_model(st.selectbox("Model", names, key="img_model"))
        arch = st.selectbox("Architecture", models.image.torchvision_architectures(), key="img_arch",
                            index=models.image.torchvision_architectures().index("resnet18"))
        upload = st.file_uploader("Checkpoint (.safetensors, .pt, .pth)", type=CHECKPOINT_TYPES,
                                  key="img_checkpoint")
        if upload is None:
            st.info("Upload a checkpoint for this architecture; using the bundled model meanwhile.")
            return image_model()
        data = upload.getvalue()
        suffix = "." + upload.name.rsplit(".", 1)[-1].lower()
        return image_model_from_upload(arch, digest(data), data, suffix)


def choose_image() -> tuple[str, bytes | None]:
    """Main column: a bundled sample or an uploaded file. Returns (key, uploaded bytes or None)."""
    source = st.radio("Image", ["Sample", "Upload"], horizontal=True, key="img_source")
    if source == "Sample":
        name = st.selectbox("Sample photo", models.sample_names(), key="img_sample")
        return f"sample:{name}", None
    upload = st.file_uploader("Your image (PNG, JPEG, WebP, BMP)", type=UPLOAD_TYPES, key="img_upload")
    if upload is None:
        st.stop()
    data = upload.getvalue()
    return f"upload:{digest(data)}", data


def predict(shared: Shared, x: torch.Tensor) -> np.ndarray:
    """Class probabilities for one preprocessed image (inference mode, under the model's lock)."""
    with shared.lock, torch.inference_mode():
        return shared.model.net(x).softmax(-1)[0].numpy()


def run() -> None:
    st.title("Images")
    st.caption("Pick a photo and see what the classifier predicts.")
    shared = choose_model()
    model = shared.model
    key, data = choose_image()
    with panel("Loading the image"):
        image = models.open_image(data) if data is not None else models.load_sample(key.split(":", 1)[1])
        rgb = model.resize(image)
        probs = predict(shared, model.to_tensor(rgb))
        top = np.argsort(probs)[::-1][:5]
        left, right = st.columns([1, 1])
        left.plotly_chart(photo_figure(rgb, title="What the model sees"), key="img_photo")
        right.plotly_chart(
            topk_bar([model.labels[i] for i in top], probs[top], highlight=0, title="Top-5 classes"),
            key="img_topk",
        )


