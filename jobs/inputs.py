"""What a job explains: image items from a folder, a glob, a zip, or a CSV/Parquet table of paths.

An item is a plain dict (it travels to Ray workers as JSON): ``path`` (absolute), ``member``
(the entry inside a zip, else None), ``name`` (shown to people, never used as a path) and
``label`` (a class index, or None). Listing never decodes an image: a damaged file is found by
the worker that reads it, recorded with its reason, and never stops the job.

Reading is defensive: files and zip entries are read through a size cap (a zip header may lie
about the size), nested archives and encrypted entries are refused with a reason, and only
regular files are read.
"""

from __future__ import annotations

import glob
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from explainers.errors import ExplainerError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
MAX_FILE_BYTES = 64 * 2**20
"""Largest image file (or zip entry, decompressed) a worker reads."""
MAX_ZIP_MEMBERS = 1_000_000


class JobError(ExplainerError):
    """A mistake in how the job was asked for (bad input, output directory, option): said plainly."""


def _item(path: str | Path, member: str | None = None, label: int | None = None, name: str | None = None) -> dict:
    path = str(path)
    return {"path": path, "member": member, "label": label,
            "name": name or (f"{Path(path).name}/{member}" if member else Path(path).name)}


def _images_in_zip(path: Path) -> list[dict]:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise JobError(f"{path.name} is not a readable zip archive ({err}).") from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise JobError(f"{path.name} has {len(infos):,} entries, more than the {MAX_ZIP_MEMBERS:,} allowed.")
    return [_item(path.resolve(), info.filename) for info in infos
            if not info.is_dir() and info.filename.lower().endswith(IMAGE_SUFFIXES + (".zip",))]


def _parse_label(value: Any, labels: Sequence[str] | None, where: str) -> int | None:
    """A label cell: empty -> None; an int (or "12") -> that index; a class name -> its index."""
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return None
    if isinstance(value, bool):
        raise JobError(f"{where}: label {value!r} is not a class index or name.")
    if isinstance(value, (int, float)) and float(value).is_integer():
        index = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        index = int(value.strip())
    elif isinstance(value, str) and labels is not None and value.strip() in labels:
        return list(labels).index(value.strip())
    else:
        raise JobError(f"{where}: label {value!r} is neither a class index nor one of the model's class names.")
    if labels is not None and not 0 <= index < len(labels):
        raise JobError(f"{where}: label {index} is out of range (the model has {len(labels)} classes).")
    return index


def _images_in_table(path: Path, path_column: str, label_column: str, labels: Sequence[str] | None) -> list[dict]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=object, keep_default_na=False) if path.suffix.lower() == ".csv" \
            else pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as err:
        raise JobError(f"Cannot read the table {path.name} ({err}).") from None
    if path_column not in frame.columns:
        raise JobError(f"{path.name} has no column {path_column!r} (columns: {', '.join(map(str, frame.columns))}); "
                       "name the image paths' column with --path-column.")
    has_labels = label_column in frame.columns
    items = []
    for row, (value, label) in enumerate(zip(frame[path_column], frame[label_column] if has_labels
                                             else [None] * len(frame)), start=2):
        if not isinstance(value, str) or not value.strip():
            raise JobError(f"{path.name} row {row}: the path is empty.")
        member = None
        if "::" in value:  # archive.zip::member/in/it.jpg
            value, member = value.split("::", 1)
        target = Path(value).expanduser()
        target = (target if target.is_absolute() else path.parent / target).resolve()
        items.append(_item(target, member, _parse_label(label, labels, f"{path.name} row {row}")))
    return items


def collect(source: str, *, path_column: str = "path", label_column: str = "label",
            labels: Sequence[str] | None = None) -> list[dict]:
    """The items ``source`` names, in a stable order (sorted paths; a table's or a zip's own order).

    ``source``: a folder (image files under it, recursively), a glob pattern (``photos/**/*.jpg``),
    a ``.zip``, or a ``.csv`` / ``.parquet`` table with a ``path_column`` (relative paths are
    relative to the table's folder; ``archive.zip::member`` names a zip entry) and an optional
    ``label_column`` (class index or class name).
    """
    if any(c in source for c in "*?["):
        found = sorted({str(Path(p).resolve()) for p in glob.glob(os.path.expanduser(source), recursive=True)
                        if Path(p).is_file()})
        items = []
        for p in found:
            if p.lower().endswith(".zip"):
                items += _images_in_zip(Path(p))
            else:
                items.append(_item(p))
        if not items:
            raise JobError(f"No file matches {source!r}.")
        return items
    path = Path(source).expanduser().resolve()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise JobError(f"{path} holds no image files ({', '.join(IMAGE_SUFFIXES)}).")
        return [_item(p, name=str(p.relative_to(path))) for p in files]
    if not path.is_file():
        raise JobError(f"{source} is not a folder, a file, or a glob pattern that matches anything.")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        items = _images_in_zip(path)
    elif suffix in TABLE_SUFFIXES:
        items = _images_in_table(path, path_column, label_column, labels)
    elif suffix in IMAGE_SUFFIXES:
        items = [_item(path)]
    else:
        raise JobError(f"{path.name}: give a folder, a glob, a .zip, a .csv or .parquet table, or an image file.")
    if not items:
        raise JobError(f"{path.name} lists no images.")
    return items


def read_bytes(item: dict, limit: int = MAX_FILE_BYTES) -> bytes:
    """The raw bytes of ``item`` (at most ``limit``), or JobError with the reason."""
    path = Path(item["path"])
    member = item.get("member")
    try:
        if not path.is_file():
            raise JobError(f"{path} is not a readable file (missing, or not a regular file).")
        if member is None:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
        else:
            if member.lower().endswith(".zip"):
                raise JobError("archives inside archives are not opened")
            with zipfile.ZipFile(path) as archive:
                info = archive.getinfo(member)
                if info.flag_bits & 0x1:
                    raise JobError("encrypted zip entry: not opened")
                with archive.open(info) as stream:
                    data = stream.read(limit + 1)  # never trust the header's size
    except KeyError:
        raise JobError(f"{path.name} has no entry {member!r}.") from None
    except (OSError, zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, EOFError) as err:
        raise JobError(f"cannot read the file ({type(err).__name__}: {err})") from None
    if len(data) > limit:
        raise JobError(f"larger than {limit:,} bytes (refused before decoding)")
    return data
