"""Turning untrusted image bytes into a clean RGB picture.

Uploads are hostile: the decoder's pixel limit is enforced as an error (not a warning), the file
must decode completely, and any mode (greyscale, 16-bit, palette, RGBA, CMYK) or EXIF orientation
ends as an upright 8-bit RGB image.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from explainers.errors import ExplainerError

MAX_PIXELS = 40_000_000
"""Largest image accepted (pixels). Larger files are refused before decoding."""

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
FORMATS_TEXT = "PNG, JPEG, WebP, BMP, GIF or TIFF"
"""``ACCEPTED_FORMATS`` as the messages say them."""


def open_image(data: bytes) -> Image.Image:
    """Decode ``data`` into an upright RGB image, or raise ExplainerError saying what is wrong."""
    if not data:
        raise ExplainerError("The file is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED_FORMATS:
                raise ExplainerError(
                    f"{image.format} files are not supported; use {FORMATS_TEXT}."
                )
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ExplainerError(
                    f"The image is {width}x{height} pixels, more than the {MAX_PIXELS:,} allowed "
                    "(a decompression bomb, or simply too large): resize it first."
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ExplainerError(f"Refused a possible decompression bomb: {err}") from None
    except UnidentifiedImageError:
        raise ExplainerError(f"This file is not an image that can be read ({FORMATS_TEXT}).") from None
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, ExplainerError):
            raise
        raise ExplainerError(f"The image file is damaged or truncated ({err}).") from None
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright 8-bit RGB: EXIF rotation applied, alpha composited on white, 16-bit rescaled."""
    image = ImageOps.exif_transpose(image)
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) / (high - low) * 255 if high > low else np.zeros_like(array)
        image = Image.fromarray(scaled.astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")
