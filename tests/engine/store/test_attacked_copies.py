"""Exact float copies of attacked images (engine.store.attacked): exact, checked, atomic."""
from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

from engine.store import attacked
from engine.store.attacked import CopyMissing, CopyUnusable, copy_paths, read_copy, read_meta, write_copy


def _x(h: int = 5, w: int = 7) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((1, 3, h, w), dtype=np.float32)  # values off the 8-bit grid


def test_a_copy_is_the_array_bit_for_bit_and_costs_12_bytes_per_pixel(tmp_path):
    x = _x()
    written = write_copy(tmp_path, "u1", x, attacked=0.25)
    meta = read_meta(tmp_path, "u1")
    back = read_copy(meta)
    assert back.dtype == np.float32 and back.tobytes() == x.tobytes()
    npy, record = copy_paths(tmp_path, "u1")
    assert npy.stat().st_size == 3 * 5 * 7 * 4 + 128  # float32 pixels and numpy's 128-byte header
    assert written == npy.stat().st_size + record.stat().st_size
    assert meta["attacked"] == 0.25 and meta["shape"] == (1, 3, 5, 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u1.json", "u1.npy"]  # no temporary left


def test_a_missing_copy_and_each_damage_are_told_apart(tmp_path):
    with pytest.raises(CopyMissing):
        read_meta(tmp_path, "none")
    write_copy(tmp_path, "u1", _x(), attacked=1.0)
    npy, record = copy_paths(tmp_path, "u1")
    meta = read_meta(tmp_path, "u1")
    data = bytearray(npy.read_bytes())
    data[200] ^= 1
    with pytest.raises(CopyUnusable, match="checksum mismatch"):
        read_copy(meta, bytes(data))
    wrong_shape = dict(meta, shape=(1, 3, 7, 5))
    good = npy.read_bytes()
    with pytest.raises(CopyUnusable, match="shape"):
        read_copy(wrong_shape, good)
    record.write_text(json.dumps(dict(json.loads(record.read_text()), unit="other")))
    with pytest.raises(CopyUnusable, match="another unit"):
        read_meta(tmp_path, "u1")


def test_a_write_that_fails_leaves_no_copy_behind(tmp_path, monkeypatch):
    """A full disk while the record is written: the array is there but without its record,
    so no copy is read; and no temporary file is left."""
    real = os.replace

    def full(src, dst):
        if str(dst).endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(attacked.os, "replace", full)
    with pytest.raises(OSError):
        write_copy(tmp_path, "u1", _x(), attacked=1.0)
    with pytest.raises(CopyMissing):
        read_meta(tmp_path, "u1")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_space_estimate_counts_the_copies_and_the_warning_names_the_option(tmp_path, photo_folder, monkeypatch):
    import shutil

    from engine.spec.experiment import Experiment
    from engine.spec.folders import find_images
    from engine.store import diskspace
    from engine.store.db import ResultStore

    exp = Experiment(images=find_images(photo_folder), root=str(photo_folder), metrics=["niqe"],
                     attacks=["ifgsm"], defences=["jpeg"])
    plain = diskspace.estimate_bytes(exp)
    exp.keep_attacked = True
    # three 160×160 photos: 12 bytes per pixel and the header and record of each copy
    assert diskspace.estimate_bytes(exp) - plain == 3 * (160 * 160 * 12 + diskspace.FLOAT_COPY_OVERHEAD)
    real = shutil.disk_usage
    monkeypatch.setattr(diskspace.shutil, "disk_usage", lambda p: real(p)._replace(free=100_000))
    with ResultStore(tmp_path / "results.sqlite") as store:
        warning = diskspace.space_warning(exp, store)
    assert warning and "drop --keep-attacked" in warning and "--save-images" not in warning
