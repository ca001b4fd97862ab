"""Folder scanning: the image files of a folder, what was skipped, and a MOS file beside them."""
from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"}

MOS_FILE_NAMES = ("mos.csv", "MOS.csv", "mos.txt")


def find_mos_file(folder: str | Path) -> str | None:
    """A MOS file (``mos.csv``: image name, MOS) lying in the image folder, if any."""
    for name in MOS_FILE_NAMES:
        p = Path(folder) / name
        if p.is_file():
            return str(p)
    return None


def find_images(folder: str | Path, recursive: bool = True) -> list[str]:
    """Image files under ``folder`` (by suffix, sorted; hidden files skipped)."""
    return scan_images(folder, recursive)[0]


def scan_images(folder: str | Path, recursive: bool = True) -> tuple[list[str], dict[str, int]]:
    """Image files under ``folder`` and what was skipped that looked like one.

    Returns:
        ``(images, skipped)``: sorted paths, and a count per reason (``"hidden"``:
        image files in or under a hidden name; ``"folder"``: folders named like an
        image, e.g. ``x.jpg/``).
    """
    folder = Path(folder)
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    images: list[str] = []
    skipped = {"hidden": 0, "folder": 0}
    for p in pattern:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if any(part.startswith(".") for part in p.relative_to(folder).parts):
            skipped["hidden"] += 1
        elif p.is_dir():
            skipped["folder"] += 1
        else:
            images.append(str(p))
    return sorted(images), {k: v for k, v in skipped.items() if v}
