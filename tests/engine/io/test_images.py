"""Bad and odd inputs: each gives a clear error or a documented conversion."""
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from engine.io.images import ImageLoadError, load_image, save_png, to_uint8
from tests.conftest import photo


@pytest.fixture
def rgb() -> np.ndarray:
    return photo("astronaut", (64, 48))


def _err(path, **kw) -> str:
    with pytest.raises(ImageLoadError) as e:
        load_image(path, **kw)
    return str(e.value)


def test_plain_rgb_round_trip(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.tensor.shape == (1, 3, 64, 48) and img.tensor.dtype == torch.float32
    assert np.array_equal(to_uint8(img.tensor), rgb) and img.note == ""


def test_zero_byte(tmp_path):
    (tmp_path / "z.png").write_bytes(b"")
    assert "empty file" in _err(tmp_path / "z.png")


def test_truncated(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "t.jpg", quality=90)
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 3])
    assert "truncated or corrupt" in _err(tmp_path / "t.jpg")


def test_not_an_image(tmp_path):
    (tmp_path / "n.png").write_text("hello, I am text")
    assert "not an image" in _err(tmp_path / "n.png")


def test_missing_directory_and_broken_link(tmp_path):
    assert "not found" in _err(tmp_path / "nope.png")
    (tmp_path / "d.png").mkdir()
    assert "is a directory" in _err(tmp_path / "d.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "link.png")
    assert "broken symbolic link" in _err(tmp_path / "link.png")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="a real chmod 000 file: root (and Windows) can still read it; "
                           "test_unreadable_forced covers the same path as root")
def test_unreadable(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "u.png")
    os.chmod(tmp_path / "u.png", 0)
    assert "permission denied" in _err(tmp_path / "u.png")


def test_unreadable_forced(tmp_path, rgb, monkeypatch):
    """The unreadable file's message, forced so that it runs as root too: the access check
    says no; an open that fails with PermissionError (the check passed, e.g. an ACL or a
    root-squashed share); an OSError with EACCES/EPERM. A different OSError stays 'corrupt'."""
    import errno

    import engine.io.images as images

    path = tmp_path / "u.png"
    Image.fromarray(rgb).save(path)
    real_access = os.access
    with monkeypatch.context() as m:
        m.setattr(images.os, "access", lambda p, mode: False if mode == os.R_OK else real_access(p, mode))
        assert _err(path) == f"{path}: permission denied (not readable)"

    def refuse(exc):
        def open_(*args, **kwargs):
            raise exc
        return open_

    for exc in (PermissionError(errno.EACCES, "Permission denied"), OSError(errno.EACCES, "denied"),
                OSError(errno.EPERM, "not permitted")):
        with monkeypatch.context() as m:
            m.setattr(images.Image, "open", refuse(exc))
            assert _err(path) == "u.png: permission denied (not readable)", exc
    with monkeypatch.context() as m:
        m.setattr(images.Image, "open", refuse(OSError(errno.EIO, "I/O error")))
        assert _err(path).startswith("u.png: truncated or corrupt image")
    assert load_image(path).tensor.shape == (1, 3, 64, 48)  # unpatched, the file reads


def test_grayscale_and_palette(tmp_path, rgb):
    Image.fromarray(rgb).convert("L").save(tmp_path / "g.png")
    g = load_image(tmp_path / "g.png")
    assert g.tensor.shape == (1, 3, 64, 48) and "grayscale" in g.note
    assert torch.equal(g.tensor[:, 0], g.tensor[:, 1])
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    assert "palette" in load_image(tmp_path / "p.png").note


def test_rgba_drops_alpha(tmp_path, rgb):
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert "alpha" in img.note and np.array_equal(to_uint8(img.tensor), rgb)


def test_sixteen_bit(tmp_path):
    arr = (np.linspace(0, 65535, 64 * 48).reshape(64, 48)).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "s.png")
    img = load_image(tmp_path / "s.png")
    assert "16-bit" in img.note
    assert img.tensor.max().item() == pytest.approx(1.0) and img.tensor.min().item() == 0.0


def test_cmyk(tmp_path, rgb):
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg")
    img = load_image(tmp_path / "c.jpg")
    assert "CMYK" in img.note and img.tensor.shape == (1, 3, 64, 48)


def test_exif_rotation(tmp_path, rgb):
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    img = load_image(tmp_path / "r.jpg")
    assert img.tensor.shape == (1, 3, 48, 64) and "EXIF orientation" in img.note


def test_tiny_and_huge(tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "tiny.png")
    assert "too small" in _err(tmp_path / "tiny.png")
    Image.new("RGB", (400, 300)).save(tmp_path / "big.png")
    msg = _err(tmp_path / "big.png", max_pixels=100_000)
    assert "too large" in msg and "400×300" in msg


def test_unicode_path_and_png_round_trip(tmp_path, rgb):
    p = tmp_path / "фото ✓" / "изображение.png"
    save_png(rgb, p)
    assert np.array_equal(to_uint8(load_image(p).tensor), rgb)
    assert not list(p.parent.glob("*.tmp"))
