"""Numpy operations behind the inspector's views (no Qt): differences, swipe, region statistics."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class InspectorImages:
    """uint8 H×W×3 arrays of one item; defended images keyed by defence label."""

    title: str
    clean: np.ndarray | None
    attacked: np.ndarray | None
    defended_clean: dict[str, np.ndarray] = field(default_factory=dict)
    defended_attacked: dict[str, np.ndarray] = field(default_factory=dict)
    note: str = ""


def _check_same_size(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"sizes differ ({a.shape[1]}×{a.shape[0]} vs {b.shape[1]}×{b.shape[0]})")


def signed_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a − b`` in units of 1/255, averaged over channels (H×W float32).

    Raises:
        ValueError: when the sizes differ (e.g. a random crop).
    """
    _check_same_size(a, b)
    return (a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)


def amplified_difference(a: np.ndarray, b: np.ndarray, gain: float | None = None) -> tuple[np.ndarray, float]:
    """``|a − b| × gain`` per channel, clipped to uint8 (H×W×3).

    Args:
        gain: the amplification; None maps the largest |a − b| to 255.

    Returns:
        the amplified difference and the gain used.
    """
    _check_same_size(a, b)
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    if gain is None:
        m = int(d.max())
        gain = 255.0 / m if m > 0 else 1.0
    return np.clip(d.astype(np.float32) * gain, 0, 255).astype(np.uint8), gain


def swipe(left: np.ndarray, right: np.ndarray, fraction: float) -> np.ndarray:
    """``left`` up to ``fraction`` of the width, ``right`` after it (same sizes), with a
    one-pixel white divider."""
    _check_same_size(left, right)
    out = right.copy()
    split = round(max(0.0, min(1.0, fraction)) * left.shape[1])
    out[:, :split] = left[:, :split]
    if 0 < split < left.shape[1]:
        out[:, split] = 255
    return out


def region_stats(clean: np.ndarray, other: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> dict[str, float]:
    """Statistics of ``other − clean`` (units of 1/255) in the pixel box [x0, x1) × [y0, y1).

    Returns:
        pixels, mean |Δ|, max |Δ|, mean Δ (signed) and the box's PSNR in dB (inf when equal).
    """
    _check_same_size(clean, other)
    h, w = clean.shape[:2]
    x0, x1 = sorted((max(0, min(w, int(x0))), max(0, min(w, int(x1)))))
    y0, y1 = sorted((max(0, min(h, int(y0))), max(0, min(h, int(y1)))))
    if x1 <= x0 or y1 <= y0:
        return {"pixels": 0, "mean_abs": math.nan, "max_abs": math.nan, "mean": math.nan, "psnr": math.nan}
    d = other[y0:y1, x0:x1].astype(np.float64) - clean[y0:y1, x0:x1].astype(np.float64)
    mse = float((d ** 2).mean())
    return {"pixels": (x1 - x0) * (y1 - y0), "mean_abs": float(np.abs(d).mean()), "max_abs": float(np.abs(d).max()),
            "mean": float(d.mean()), "psnr": math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)}




@dataclass
class DiffViews:
    """The difference views of one item, computed off the GUI thread.

    Attributes:
        signed: ``other − clean`` averaged over channels (H×W float32, 1/255 units).
        rgb: ``|other − clean|`` amplified (H×W×3 uint8) for the ``abs`` modes, else None.
        gain: the amplification used (``abs`` modes).
        max_abs: ``max |signed|`` (the signed colour bar's range), at least 1e-12.
        error: why there is no difference to show ("" when there is).
    """

    signed: np.ndarray | None = None
    rgb: np.ndarray | None = None
    gain: float = 1.0
    max_abs: float = 1.0
    error: str = ""


def difference_views(other: np.ndarray | None, clean: np.ndarray | None, mode: str,
                     gain: float | None = None) -> DiffViews:
    """What the inspector's difference view shows for ``mode`` (``abs…`` or ``signed…``):
    plain numpy, run in a background call (a 3-megapixel item takes ~0.3 s)."""
    if clean is None or other is None:
        return DiffViews(error="image not available")
    try:
        signed = signed_difference(other, clean)
        rgb, used = amplified_difference(other, clean, gain) if mode.startswith("abs") else (None, 1.0)
    except ValueError as exc:
        return DiffViews(error=str(exc))
    return DiffViews(signed, rgb, used, float(np.abs(signed).max()) or 1.0)
