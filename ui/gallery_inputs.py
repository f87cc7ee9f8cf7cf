"""The Gallery's uploads: several images or zip archives, all treated as hostile.

Nothing is ever written to disk, so a member name like ``../../etc/passwd`` is only a label
(shown as its last part). Zip members are read through a size-capped stream (a header may lie
about the size), nested archives and encrypted members are skipped, and the number of images,
of members examined and of bytes decompressed are capped. Each file that is not used is listed
with the reason.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image

from explainers.errors import ExplainerError
from models.image_input import open_image

MAX_IMAGES = 40
MAX_MEMBERS = 500
MAX_MEMBER_BYTES = 32 * 2**20
MAX_TOTAL_BYTES = 256 * 2**20


@dataclass
class GalleryImage:
    """A decoded image, its display name and its cache key (``upload:<sha256>``, as on the Images page)."""

    name: str
    image: Image.Image
    key: str


@dataclass
class Skipped:
    name: str
    reason: str


@dataclass
class Intake:
    images: list[GalleryImage]
    skipped: list[Skipped]
    notes: list[str]


def display_name(name: str) -> str:
    """The last path part of ``name`` without control characters (never used as a path)."""
    last = re.split(r"[\\/]+", name.rstrip("/\\"))[-1] if name else ""
    return re.sub(r"[\x00-\x1f\x7f]", "?", last)[:120] or "(unnamed)"


class _Reader:
    def __init__(self, max_images: int) -> None:
        self.intake = Intake([], [], [])
        self.max_images = max_images
        self.budget = MAX_TOTAL_BYTES
        self.names: set[str] = set()
        self.not_read = 0

    def full(self) -> bool:
        return len(self.intake.images) >= self.max_images

    def add(self, name: str, data: bytes) -> None:
        if self.full():
            self.not_read += 1
            return
        try:
            image = open_image(data)
        except ExplainerError as err:
            self.intake.skipped.append(Skipped(name, str(err)))
            return
        unique, n = name, 2
        while unique in self.names:
            unique, n = f"{name} ({n})", n + 1
        self.names.add(unique)
        self.intake.images.append(GalleryImage(unique, image, f"upload:{hashlib.sha256(data).hexdigest()}"))

    def add_zip(self, name: str, data: bytes) -> None:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            members = archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            self.intake.skipped.append(Skipped(name, f"not a readable zip archive ({err})"))
            return
        if len(members) > MAX_MEMBERS:
            self.intake.notes.append(f"{name}: only the first {MAX_MEMBERS} of its {len(members)} entries were examined.")
        for info in members[:MAX_MEMBERS]:
            if info.is_dir():
                continue
            label = f"{name}/{display_name(info.filename)}"
            if self.full():
                self.not_read += 1
                continue
            if info.flag_bits & 0x1:
                self.intake.skipped.append(Skipped(label, "encrypted: not opened"))
            elif info.filename.lower().endswith(".zip"):
                self.intake.skipped.append(Skipped(label, "archives inside archives are not opened"))
            elif info.file_size > MAX_MEMBER_BYTES:
                self.intake.skipped.append(Skipped(label, f"{info.file_size:,} bytes uncompressed, over the "
                                                   f"{MAX_MEMBER_BYTES:,} allowed (a zip bomb?)"))
            elif self.budget <= 0:
                self.intake.skipped.append(Skipped(label, "the archive's total size limit was reached"))
            else:
                self.read_member(archive, info, label)

    def read_member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> None:
        limit = min(MAX_MEMBER_BYTES, self.budget)
        try:
            with archive.open(info) as stream:
                data = stream.read(limit + 1)  # never trust the header's size
        except (zipfile.BadZipFile, NotImplementedError, OSError, RuntimeError, ValueError, EOFError) as err:
            self.intake.skipped.append(Skipped(label, f"damaged or unsupported zip entry ({err})"))
            return
        self.budget -= len(data)
        if len(data) > limit:
            self.intake.skipped.append(Skipped(label, f"larger than {limit:,} bytes once decompressed (a zip bomb?)"))
            return
        self.add(label, data)


def read_uploads(files: Iterable[tuple[str, bytes]], max_images: int = MAX_IMAGES) -> Intake:
    """Images from uploaded ``(name, bytes)`` pairs: image files and zip archives of them, in order.

    At most ``max_images`` are decoded; the rest are counted in a note. Files that cannot be used
    are returned in ``skipped`` with the reason (never raised).
    """
    reader = _Reader(max_images)
    for name, data in files:
        label = display_name(name)
        if data[:4] == b"PK\x03\x04" or label.lower().endswith(".zip"):
            reader.add_zip(label, data)
        else:
            reader.add(label, data)
    if reader.not_read:
        reader.intake.notes.append(f"Only the first {max_images} images are used; {reader.not_read} more "
                                   "file(s) were not read.")
    return reader.intake
