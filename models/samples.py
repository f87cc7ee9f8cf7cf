"""Sample photos that ship inside installed registry packages (never copied into the repo).

Each sample is named for people ("cat", "coffee") and loaded from the package that carries it:
scikit-image's ``skimage.data``, scikit-learn's sample images, matplotlib's sample data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from explainers.errors import ExplainerError


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        # stereo_motorcycle returns (left, right, disparity): take the left view.
        return image[0] if isinstance(image, tuple) else image

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


def _matplotlib(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from matplotlib import cbook

        with cbook.get_sample_data(filename) as handle:
            return np.asarray(Image.open(handle).convert("RGB"))

    return load


@dataclass(frozen=True)
class Sample:
    """A bundled photo: the name users see, where it comes from, and its loader."""

    name: str
    source: str
    load_array: Callable[[], np.ndarray]


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in [
        Sample("cat", "scikit-image: chelsea", _skimage("chelsea")),
        Sample("coffee", "scikit-image: coffee", _skimage("coffee")),
        Sample("astronaut", "scikit-image: astronaut", _skimage("astronaut")),
        Sample("rocket", "scikit-image: rocket", _skimage("rocket")),
        Sample("motorcycle", "scikit-image: stereo_motorcycle", _skimage("stereo_motorcycle")),
        Sample("palace", "scikit-learn: china.jpg", _sklearn("china.jpg")),
        Sample("flower", "scikit-learn: flower.jpg", _sklearn("flower.jpg")),
        Sample("grace_hopper", "matplotlib: grace_hopper.jpg", _matplotlib("grace_hopper.jpg")),
    ]
}


def sample_names() -> list[str]:
    """Names of the bundled photos, in display order."""
    return list(SAMPLES)


def load_sample(name: str) -> Image.Image:
    """The bundled photo ``name`` as an RGB PIL image."""
    if name not in SAMPLES:
        raise ExplainerError(f"No sample named {name!r}. Available: {', '.join(SAMPLES)}.")
    array = SAMPLES[name].load_array()
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(array[..., :3]).astype(np.uint8), "RGB")
