"""A tiny subjective data set built from real photos: graded blur, JPEG and noise.

The score of an image is a known decreasing function of its distortion level
(``100 · (1 − level / LEVELS)``; pristine photos score 100), the same for the three
distortion types, so a metric that learned the data ranks images by level.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from tests.conftest import photo

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
LEVELS = 4


def degrade(img: np.ndarray, kind: str, level: int, rng: np.random.Generator) -> np.ndarray:
    """``img`` (uint8 H×W×3) distorted at ``level`` (0 = unchanged)."""
    if level == 0:
        return img
    pil = Image.fromarray(img)
    if kind == "blur":
        return np.asarray(pil.filter(ImageFilter.GaussianBlur(radius=0.8 * level)))
    if kind == "jpeg":
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(60 / 2 ** level))
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    noise = rng.normal(0.0, 12.0 * level, img.shape)
    return np.clip(img.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def score_of(level: int) -> float:
    return 100.0 * (1.0 - level / LEVELS)


def build_dataset(folder: Path, size: int = 64, photos: tuple[str, ...] = PHOTOS,
                  kinds: tuple[str, ...] = ("blur", "jpeg", "noise")) -> dict[str, float]:
    """Write the images (PNG) and ``mos.csv`` into ``folder``; returns name → score."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    scores: dict[str, float] = {}
    for name in photos:
        base = np.asarray(Image.fromarray(photo(name, (192, 192))).resize((size, size), Image.BICUBIC))
        Image.fromarray(base).save(folder / f"{name}_ref.png")
        scores[f"{name}_ref.png"] = score_of(0)
        for kind in kinds:
            for level in range(1, LEVELS + 1):
                fname = f"{name}_{kind}{level}.png"
                Image.fromarray(degrade(base, kind, level, rng)).save(folder / fname)
                scores[fname] = score_of(level)
    (folder / "mos.csv").write_text("image_name,mos\n" + "".join(f"{k},{v}\n" for k, v in scores.items()))
    return scores
