"""Read a job's output directory back: the manifest, the rows (maps left on disk), one map at a time.

The dashboard imports this module (never Ray). The directory is user input: it is resolved, must
be a directory holding a ``manifest.json`` of this format, and only files named like shards
(``shards/part-NNNNN.parquet``, regular files, not links out of the directory) are read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from jobs.inputs import MAX_FILE_BYTES, JobError, read_bytes

MAX_MANIFEST_BYTES = 64 * 2**20
SHARD_NAME = re.compile(r"part-\d{5}\.parquet")
COLUMNS = ["shard", "index", "name", "path", "member", "sha256", "label", "label_name", "status", "error",
           "method", "target", "target_name", "target_rank", "is_label", "predicted", "predicted_name",
           "confidence", "target_probability", "layer", "height", "width", "all_zero", "seconds",
           "deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc", "disagreement", "extras",
           "worker"]
"""Every column but ``map``: what a table of the job needs."""


def input_hw(model: dict[str, Any]) -> tuple[int, int]:
    """(height, width) of a manifest's model input: ``input_size`` [h, w] as jobs write it, or one number
    (a square, as manifests before (h, w) said it); 224 when it is not given."""
    size = model.get("input_size", 224)
    try:
        height, width = (size, size) if isinstance(size, (int, float)) else size
        return int(height), int(width)
    except (TypeError, ValueError):
        raise JobError(f"The job's model input size {size!r} is neither one number nor (height, width).") from None


@dataclass
class Job:
    """An opened job: its directory, manifest and rows (one per image, target and method; no maps)."""

    root: Path
    manifest: dict[str, Any]
    rows: pd.DataFrame
    problems: list[str]

    @property
    def methods(self) -> list[str]:
        return list(self.manifest.get("methods", []))

    @property
    def has_labels(self) -> bool:
        return bool(self.rows["label"].notna().any()) if len(self.rows) else False

    @property
    def has_scores(self) -> bool:
        return bool(self.rows["deletion_auc"].notna().any()) if len(self.rows) else False

    @property
    def failures(self) -> pd.DataFrame:
        """Images that could not be read (one row each, with the reason)."""
        rows = self.rows
        return rows[(rows["status"] == "failed") & rows["method"].isna()][["name", "error"]]

    def map_of(self, shard: int, index: int, target: int, method: str) -> np.ndarray:
        """The (height, width) float32 map of one row, read from its shard only."""
        path = _shard_file(self.root, int(shard))
        table = pq.read_table(path, columns=["index", "target", "method", "height", "width", "map"],
                              filters=[("index", "=", int(index)), ("target", "=", int(target)),
                                       ("method", "=", str(method))])
        if table.num_rows != 1 or table.column("map")[0].values is None:
            raise JobError(f"No stored map for image {index}, target {target}, method {method}.")
        height, width = int(table.column("height")[0].as_py()), int(table.column("width")[0].as_py())
        values = table.column("map")[0].values.to_numpy(zero_copy_only=False)
        return values.astype(np.float32).reshape(height, width)

    def image_bytes(self, row: pd.Series) -> bytes:
        """The original image file of ``row`` (as listed by the job), read with the job's size cap."""
        member = row.get("member")
        item = {"path": str(row["path"]), "member": None if member is None or pd.isna(member) else str(member)}
        return read_bytes(item, MAX_FILE_BYTES)


def _shard_file(root: Path, shard: int) -> Path:
    path = root / "shards" / f"part-{shard:05d}.parquet"
    if path.is_symlink() or not path.is_file() or path.resolve().parent != (root / "shards").resolve():
        raise JobError(f"Shard {shard} is missing from {root}.")
    return path


def open_job(directory: str | Path) -> Job:
    """The job in ``directory`` (hostile input: resolved and checked), or JobError saying why not."""
    text = str(directory).strip()
    if not text or "\x00" in text:
        raise JobError("Give the job's output directory.")
    try:
        root = Path(text).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        raise JobError(f"{text} does not exist.") from None
    if not root.is_dir():
        raise JobError(f"{root} is not a directory.")
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file() or manifest_path.is_symlink():
        raise JobError(f"{root} holds no job manifest (manifest.json): is it a `python -m jobs` output directory?")
    if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
        raise JobError(f"{manifest_path} is too large to be a job manifest.")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise JobError(f"{manifest_path} is not readable JSON ({err}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != 1 or not isinstance(manifest.get("methods"), list):
        raise JobError(f"{manifest_path} is not a job manifest of a format this dashboard reads.")
    shards = root / "shards"
    files = sorted(p for p in shards.iterdir() if SHARD_NAME.fullmatch(p.name)) if shards.is_dir() else []
    frames, problems = [], []
    for path in files:
        if path.is_symlink() or not path.is_file():
            problems.append(f"{path.name}: not a regular file (skipped)")
            continue
        try:
            frames.append(pq.read_table(path, columns=COLUMNS).to_pandas())
        except Exception as err:  # noqa: BLE001 - a damaged shard is named, the others still read
            problems.append(f"{path.name}: not a readable shard ({type(err).__name__}: {err})")
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return Job(root, manifest, rows, problems)
