"""Reading images from disk robustly, and writing lossless PNGs.

Every failure becomes an :class:`ImageLoadError` with a message a user can act on; odd but
valid inputs (grayscale, palette, RGBA, CMYK, 16-bit, EXIF-rotated) are converted to RGB
and the conversion is reported in :attr:`LoadedImage.note`.
"""
from __future__ import annotations

import errno
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

# Large images are checked against our own limit before decoding (clear message instead of
# PIL's DecompressionBombError).
Image.MAX_IMAGE_PIXELS = None

MIN_SIDE = 16
DEFAULT_MAX_PIXELS = 40_000_000


class ImageLoadError(RuntimeError):
    """An image could not be used; the message says why and names the file."""


@dataclass
class LoadedImage:
    tensor: torch.Tensor  # 1×3×H×W float32 in [0, 1]
    note: str = ""        # conversions applied, e.g. "RGBA: alpha dropped"

    @property
    def size(self) -> tuple[int, int]:
        return int(self.tensor.shape[-1]), int(self.tensor.shape[-2])


def _check_path(path: Path) -> None:
    if not path.exists():
        if path.is_symlink():
            raise ImageLoadError(f"{path}: broken symbolic link")
        raise ImageLoadError(f"{path}: file not found")
    if path.is_dir():
        raise ImageLoadError(f"{path}: is a directory, not an image file")
    if not os.access(path, os.R_OK):
        raise ImageLoadError(f"{path}: permission denied (not readable)")
    if path.stat().st_size == 0:
        raise ImageLoadError(f"{path}: empty file (0 bytes)")


def _to_rgb_array(im: Image.Image) -> tuple[np.ndarray, str]:
    """Convert any PIL mode to float32 H×W×3 in [0, 1]; returns the array and a note."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.float32) / 255.0, ""
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / peak, 0.0, 1.0).astype(np.float32)
        return np.repeat(arr[..., None], 3, axis=2), f"{mode} ({'16' if peak > 255 else '8'}-bit grayscale) converted to RGB"
    if mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        hi = float(arr.max()) if arr.size else 1.0
        arr = arr / (255.0 if hi > 1.0 else 1.0)
        return np.repeat(np.clip(arr, 0, 1)[..., None], 3, axis=2), "float grayscale converted to RGB"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        return np.asarray(im.convert("RGBA").convert("RGB"), dtype=np.float32) / 255.0, f"{mode}: alpha channel dropped"
    notes = {"L": "grayscale converted to RGB", "1": "1-bit converted to RGB",
             "P": "palette converted to RGB", "CMYK": "CMYK converted to RGB",
             "YCbCr": "YCbCr converted to RGB", "LAB": "LAB converted to RGB", "HSV": "HSV converted to RGB"}
    try:
        rgb = im.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageLoadError(f"unsupported image mode {mode!r}: {exc}") from exc
    return np.asarray(rgb, dtype=np.float32) / 255.0, notes.get(mode, f"{mode} converted to RGB")


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS,
               min_side: int = MIN_SIDE, data: bytes | None = None) -> LoadedImage:
    """Read an image file as a 1×3×H×W float tensor in [0, 1].

    Args:
        path: the file (unicode names are fine); with ``data``, only its name is used.
        max_pixels: refuse larger images (checked from the header, before decoding).
        min_side: refuse images whose shorter side is smaller.
        data: the file's bytes, already read (e.g. by a driver on another host).

    Raises:
        ImageLoadError: with a message naming the file and the problem.
    """
    p = Path(path)
    if data is None:
        _check_path(p)
    elif not data:
        raise ImageLoadError(f"{p.name}: empty file (0 bytes)")
    try:
        with Image.open(p if data is None else io.BytesIO(data)) as im:
            _check_size(im, p.name, max_pixels, min_side)
            im.load()
            notes = []
            if getattr(im, "n_frames", 1) > 1:
                notes.append("first frame of an animated/multi-page image")
            orientation = im.getexif().get(0x0112, 1)
            im2 = im
            if orientation not in (None, 1):
                im2 = ImageOps.exif_transpose(im)
                notes.append(f"EXIF orientation {orientation} applied")
            arr, note = _to_rgb_array(im2)
            if note:
                notes.append(note)
    except ImageLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - mapped to the one message a user reads
        raise _load_error(p.name, exc) from None
    if not np.isfinite(arr).all():
        raise ImageLoadError(f"{p.name}: contains non-finite pixel values")
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0).contiguous()
    return LoadedImage(t, "; ".join(notes))


def _check_size(im: Image.Image, name: str, max_pixels: int, min_side: int) -> None:
    w, h = im.size
    if w * h > max_pixels:
        raise ImageLoadError(
            f"{name}: too large ({w}×{h} = {w * h:,} pixels; the limit is "
            f"{max_pixels:,} — raise --max-pixels (max_pixels in a config) to allow it)")
    if min(w, h) < min_side:
        raise ImageLoadError(f"{name}: too small ({w}×{h} px; at least {min_side} px per side needed)")


def _load_error(name: str, exc: BaseException) -> BaseException:
    """The :class:`ImageLoadError` a reading error becomes (others are returned as they are)."""
    try:
        raise exc
    except UnidentifiedImageError:
        return ImageLoadError(f"{name}: not an image, or a format that cannot be read")
    except Image.DecompressionBombError as bomb:
        return ImageLoadError(f"{name}: too large ({bomb})")
    except PermissionError:
        return ImageLoadError(f"{name}: permission denied (not readable)")
    except OSError as os_error:
        if os_error.errno in (errno.EACCES, errno.EPERM):
            return ImageLoadError(f"{name}: permission denied (not readable)")
        return ImageLoadError(f"{name}: truncated or corrupt image ({os_error})")
    except (ValueError, SyntaxError, MemoryError) as bad:
        return ImageLoadError(f"{name}: corrupt image ({bad})")
    except BaseException as other:  # noqa: BLE001 - not a reading error: the caller re-raises it
        return other
    return exc


def check_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = MIN_SIDE) -> None:
    """Check a file the way :func:`load_image` does, from its header only (fast: no
    decoding), so unreadable files are found when a folder opens.

    Raises:
        ImageLoadError: with the message :func:`load_image` gives for the same file.
    """
    p = Path(path)
    _check_path(p)
    try:
        with Image.open(p) as im:
            _check_size(im, p.name, max_pixels, min_side)
    except ImageLoadError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _load_error(p.name, exc) from None


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """First image of a batch (or a 3×H×W tensor) as uint8 H×W×3 (rounded, clamped)."""
    if x.dim() == 4:
        x = x[0]
    return (x.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy())


def save_png(x: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    """Save losslessly as 8-bit PNG (atomic: written to a temp name, then renamed)."""
    arr = x if isinstance(x, np.ndarray) else to_uint8(x)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    try:
        Image.fromarray(arr).save(tmp, format="PNG")
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave half files behind
        raise
    return p
