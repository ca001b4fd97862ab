"""Exact float copies of attacked images, kept beside the store (``keep_attacked``).

A defence added later needs the attacked image x_a. The 8-bit PNG of ``--save-images``
is not x_a (the attack's output is float; rounding it moves the scores, and under the
``lab`` protocol the rows are measured on the float image), so it is never used in its
place. A run with ``keep_attacked`` writes, per unit, x_a as it was defended and scored:

- ``attacked/<unit id>.npy``: the 1×3×H×W array in its own dtype (float32: 12 bytes per
  pixel, plus a 128-byte header);
- ``attacked/<unit id>.json``: its shape, dtype, SHA-256 and the unit's M(x_a).

The unit id is the unit's content identity (:mod:`engine.spec.identity`: image content,
metric, weights, attack, seed, code version), so a copy is found by what it computes.
Both files are written atomically (a temporary name, then a rename), the array first:
a copy without its record is not used, and a killed run leaves at most a stray
temporary file. :func:`decode_copy` checks the checksum, shape and dtype; any mismatch
raises :class:`CopyUnusable` (the attack is then computed again and the run says why).

Example:
    >>> import numpy as np, tempfile
    >>> d = tempfile.mkdtemp()
    >>> n = write_copy(d, "u1", np.zeros((1, 3, 2, 2), np.float32), attacked=1.5)
    >>> meta = read_meta(d, "u1")
    >>> decode_copy(Path(meta["path"]).read_bytes(), meta).shape
    (1, 3, 2, 2)
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

#: the folder, beside the store file, that holds the copies
COPY_DIR = "attacked"


class CopyUnusable(Exception):
    """A stored copy cannot be used; the message says why (one line)."""


class CopyMissing(CopyUnusable):
    """No copy is stored for the unit."""


def copy_paths(folder: str | os.PathLike, unit_id: str) -> tuple[Path, Path]:
    """The array file and its record for ``unit_id`` in ``folder``."""
    base = Path(folder)
    return base / f"{unit_id}.npy", base / f"{unit_id}.json"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave half files behind
        raise


def write_copy(folder: str | os.PathLike, unit_id: str, array: np.ndarray, attacked: float) -> int:
    """Keep ``array`` (x_a, 1×3×H×W) as the unit's copy; returns the bytes written.

    Args:
        folder: the copies' folder (created if needed).
        unit_id: the unit's id.
        array: x_a as defended and scored.
        attacked: the unit's M(x_a), recorded so that a copy is only used with the rows
            it belongs to.
    """
    npy, record = copy_paths(folder, unit_id)
    npy.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    data = buf.getvalue()
    meta = {"unit": unit_id, "shape": list(array.shape), "dtype": str(array.dtype),
            "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "attacked": float(attacked)}
    text = json.dumps(meta, sort_keys=True).encode()
    _atomic_write(npy, data)
    _atomic_write(record, text)
    return len(data) + len(text)


def remove_copy(folder: str | os.PathLike, unit_id: str) -> None:
    """Remove the unit's copy and its record, if any (an item whose commit failed)."""
    for path in copy_paths(folder, unit_id):
        path.unlink(missing_ok=True)


def read_meta(folder: str | os.PathLike, unit_id: str) -> dict[str, Any]:
    """The record of the unit's copy, with ``path`` (the array file) added.

    Raises:
        CopyMissing: no copy (or no record) is stored.
        CopyUnusable: the record is unreadable, names another unit, or the array file's
            size is not the recorded one.
    """
    npy, record = copy_paths(folder, unit_id)
    if not record.exists() or not npy.exists():
        raise CopyMissing("no exact float copy of the attacked image is stored")
    try:
        meta = json.loads(record.read_text(encoding="utf-8"))
        shape = tuple(int(v) for v in meta["shape"])
        sha, size, dtype = str(meta["sha256"]), int(meta["bytes"]), str(meta["dtype"])
        attacked = float(meta["attacked"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CopyUnusable(f"the stored copy's record {record.name} is unreadable ({type(exc).__name__})") from None
    if meta.get("unit") != unit_id:
        raise CopyUnusable(f"the stored copy's record {record.name} names another unit")
    try:
        actual = npy.stat().st_size
    except OSError as exc:
        raise CopyUnusable(f"the stored copy {npy.name} is unreadable ({exc.strerror})") from None
    if actual != size:
        raise CopyUnusable(f"the stored copy {npy.name} is damaged ({actual} bytes, recorded {size})")
    return {"path": str(npy), "shape": shape, "sha256": sha, "bytes": size, "attacked": attacked, "dtype": dtype}


def decode_copy(data: bytes, meta: dict[str, Any]) -> np.ndarray:
    """The array in ``data`` (a copy's file), checked against its record ``meta``.

    Raises:
        CopyUnusable: checksum, shape or dtype differ from the record, or the file is not
            an array.
    """
    name = Path(str(meta.get("path", "copy"))).name
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise CopyUnusable(f"the stored copy {name} is damaged (checksum mismatch)")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CopyUnusable(f"the stored copy {name} is not an array ({exc})") from None
    if tuple(arr.shape) != tuple(meta["shape"]) or str(arr.dtype) != meta["dtype"]:
        raise CopyUnusable(f"the stored copy {name} has shape {tuple(arr.shape)} {arr.dtype}, "
                           f"recorded {tuple(meta['shape'])} {meta['dtype']}")
    return arr


def read_copy(meta: dict[str, Any], data: bytes | None = None) -> np.ndarray:
    """The checked array of a copy: from ``data`` when the caller read the file (a
    remote worker), else from ``meta["path"]``.

    Raises:
        CopyUnusable: unreadable or damaged (see :func:`decode_copy`).
    """
    if data is None:
        try:
            data = Path(meta["path"]).read_bytes()
        except OSError as exc:
            raise CopyUnusable(f"the stored copy {Path(meta['path']).name} is unreadable "
                               f"({exc.strerror or type(exc).__name__})") from None
    return decode_copy(data, meta)
