"""Models cached once per server process and shared by every session, each with its own lock.

Explainers attach hooks to the shared network for the length of a call, so calls on one model
are serialised with its lock; different models run in parallel.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

import models


@dataclass
class Shared:
    """A cached model and the lock that guards its use across sessions."""

    model: Any
    lock: threading.Lock


@st.cache_resource(show_spinner="Loading the image model…", max_entries=4)
def image_model(name: str = models.DEFAULT_IMAGE_MODEL) -> Shared:
    return Shared(models.load_image_model(name), threading.Lock())


@st.cache_resource(show_spinner="Loading your checkpoint…", max_entries=2)
def image_model_from_upload(arch: str, digest: str, _data: bytes, suffix: str) -> Shared:
    """A torchvision architecture with an uploaded checkpoint (keyed by the file's digest)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"checkpoint{suffix}"
        path.write_bytes(_data)
        return Shared(models.load_torchvision_model(arch, path), threading.Lock())


@st.cache_resource(show_spinner="Loading your model directory…", max_entries=2)
def image_model_from_directory(folder: str) -> Shared:
    """A local Hugging Face image-classification directory (its image processor's preprocessing)."""
    return Shared(models.image.load_hf_image_model(folder), threading.Lock())


def digest(data: bytes) -> str:
    """Content hash used as a cache key for uploads."""
    return hashlib.sha256(data).hexdigest()


@st.cache_resource(show_spinner="Loading the text model…", max_entries=4)
def text_model(name_or_path: str = models.DEFAULT_TEXT_MODEL) -> Shared:
    """A bundled text classifier by name, or a local Hugging Face directory (eager attention)."""
    return Shared(models.load_text_model(name_or_path), threading.Lock())
