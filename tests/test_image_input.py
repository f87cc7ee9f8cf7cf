"""Untrusted uploads become upright RGB images or a clear ExplainerError."""

import io

import numpy as np
import pytest
from PIL import Image

from explainers.errors import ExplainerError
from models import open_image


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


RGB = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    "image,fmt",
    [
        (RGB, "PNG"),
        (RGB, "JPEG"),
        (RGB, "WEBP"),
        (RGB, "BMP"),
        (RGB.convert("L"), "PNG"),
        (RGB.convert("RGBA"), "PNG"),
        (RGB.convert("P"), "PNG"),
        (RGB.convert("CMYK"), "JPEG"),
        (Image.new("RGB", (1, 1)), "PNG"),
    ],
)
def test_modes_and_formats_become_rgb(image, fmt):
    out = open_image(encode(image, fmt))
    assert out.mode == "RGB" and out.size == image.size


def test_16_bit_greyscale_is_rescaled():
    array = np.linspace(0, 65535, 50 * 20).reshape(20, 50).astype(np.uint16)
    out = np.asarray(open_image(encode(Image.fromarray(array), "PNG")))
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert np.asarray(open_image(encode(rgba, "PNG")))[0, 0].tolist() == [255, 255, 255]


def test_exif_rotation_is_honoured():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = open_image(encode(Image.new("RGB", (60, 40)), "JPEG", exif=exif))
    assert out.size == (40, 60)


def test_animated_gif_takes_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    out = np.asarray(open_image(data))
    assert out[0, 0, 0] > 200 and out[0, 0, 2] < 50


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "empty"),
        (b"hello, I am a text file", "not an image"),
        (b"%PDF-1.4\n1 0 obj<<>>endobj", "not an image"),
        (encode(RGB, "PNG")[:200], "damaged or truncated"),
        (encode(RGB, "JPEG")[:300], "damaged or truncated"),
    ],
)
def test_bad_files_get_clear_messages(data, message):
    with pytest.raises(ExplainerError, match=message):
        open_image(data)


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("L", (10_000, 10_000)), "PNG")  # 100 Mpx in ~100 kB
    assert len(bomb) < 200_000
    with pytest.raises(ExplainerError, match="decompression bomb"):
        open_image(bomb)
