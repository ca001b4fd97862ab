"""The names of a row's pair and score columns (no torch: the GUI's table reads them at start)."""
from __future__ import annotations

#: (column suffix, first image, second image) for the five compared pairs
PAIRS = (
    ("clear_defended-clear", "x", "dx"),
    ("clear_attacked", "x", "xa"),
    ("clear_defended-attacked", "x", "dxa"),
    ("attacked_defended-attacked", "xa", "dxa"),
    ("defended-clear_defended-attacked", "dx", "dxa"),
)
PAIR_KEYS = ("ssim", "mse", "psnr", "l_inf", "mae")
PAIR_COLUMNS = [f"{k}_{pair}" for pair, _, _ in PAIRS for k in PAIR_KEYS]

SCORE_COLUMNS = [
    "robust_abs_gain", "robust_rel_gain", "nonpurified_abs_gain", "nonpurified_rel_gain",
    "both_defended_abs_gain", "both_defended_rel_gain", "gain_removed", "quality_score",
    "quality_score_clear", "similarity_score", "geometry_aware_quality", "robustness",
    "nonpurified_robustness",
    # MRB (AAAI-24): min-max normalised scores s = (M − worst)/(best − worst) and signed gains
    "norm_clear", "norm_defended-attacked", "mrb_abs_gain", "mrb_rel_gain",
]
