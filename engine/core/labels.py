"""Labels, score names and number formatting shared by the report's tables and plots."""
from __future__ import annotations

import math
from typing import Any

from engine.core.bounds import msu_bounds

# Score columns shown in the main summary table, in this order (others go to "all scores").
MAIN_SCORES: tuple[str, ...] = (
    "nonpurified_abs_gain", "robust_abs_gain", "robust_rel_gain", "both_defended_abs_gain",
    "quality_score", "quality_score_clear", "geometry_aware_quality", "similarity_score", "robustness",
    "certified_width", "certified_holds", "attack_time", "defence_time", "mean_time",
)

SCORE_TITLES: dict[str, tuple[str, str]] = {
    "nonpurified_abs_gain": ("attack gain", "|M(x) − M(x_a)| / range: what the attack gained without a defence"),
    "robust_abs_gain": ("remaining gain", "|M(x) − M(D(x_a))| / range: gain left after the defence (lower is better)"),
    "robust_rel_gain": ("remaining gain (rel.)", "|M(x) − M(D(x_a))| / (M(x) + 1e-6)"),
    "both_defended_abs_gain": ("gain D(x)→D(x_a)", "|M(D(x)) − M(D(x_a))| / range"),
    "quality_score": ("quality D(x_a)", "(SSIM + PSNR/80) / 2 between x and D(x_a) (higher is better)"),
    "quality_score_clear": ("quality D(x)", "(SSIM + PSNR/80) / 2 between x and D(x)"),
    "geometry_aware_quality": ("quality D(x)→D(x_a)", "(SSIM + PSNR/80) / 2 between D(x) and D(x_a); only for "
                               "flip/crop/rotate, which never undo the geometry"),
    "similarity_score": ("similarity", "SSIM + PSNR/40 between x and D(x_a)"),
    "robustness": ("robustness", "AAAI-24 robustness: mean log10(max(1−s, s) / (|s − s′| + ε)), higher is more robust"),
    "certified_width": ("certified width", "certified defences: mean width of the clean image's certified "
                        "interval at radius r, / range (lower is tighter)"),
    "certified_holds": ("certificate holds", "certified defences: share of images whose attacked smoothed "
                        "score lies inside the clean image's certified interval"),
    "attack_time": ("attack s", "mean attack time per image, seconds"),
    "defence_time": ("defence s", "mean defence time per call, seconds"),
    "mean_time": ("time s", "mean time per call, seconds"),
}


def score_title(score: str) -> str:
    return SCORE_TITLES.get(score, (score.replace("_", " "), ""))[0]


def score_help(score: str) -> str:
    return SCORE_TITLES.get(score, ("", score))[1]


def component_label(name: Any, preset: Any = None) -> str:
    """``jpeg[30]`` style label from a name and its ``*_preset`` column ("default" hides)."""
    name = "" if name is None else str(name)
    if preset in (None, "", "default") or (isinstance(preset, float) and math.isnan(preset)):
        return name
    return f"{name}[{preset}]"


def as_float(v: Any) -> float:
    """A float, or NaN for empty/missing/non-numeric values."""
    if v is None or v == "":
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def fmt(v: Any, digits: int = 4) -> str:
    """Compact display of a number (``–`` for missing)."""
    f = as_float(v)
    if math.isnan(f):
        return "–" if v in (None, "") or isinstance(v, (int, float)) else str(v)
    if f == 0:
        return "0"
    if abs(f) >= 10 ** digits or abs(f) < 1e-3:
        return f"{f:.{digits - 1}e}"
    return f"{f:.{digits}g}"


def lower_better(metric: str) -> bool | None:
    """Whether a lower score is better for a metric (None when unknown)."""
    b = msu_bounds(metric)
    if b is None:
        return None
    return b[0] > b[1]
