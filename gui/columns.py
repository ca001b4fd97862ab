"""Results-table columns in words, their formulas, and the chooser's presets (no Qt).

Score titles and formulas come from :data:`engine.core.labels.SCORE_TITLES`, the same
table the report prints, so the GUI and the report never disagree. In the GUI the clean
image is always "clean" (the CSV keeps MSU's ``clear`` column names).
"""
from __future__ import annotations

from engine.evaluation.columns import PAIR_KEYS, PAIRS
from engine.core.labels import SCORE_TITLES

_IMAGES = {"x": "x", "xa": "xₐ", "dx": "D(x)", "dxa": "D(xₐ)"}
_PAIR_NAMES = {pair: (_IMAGES[a], _IMAGES[b]) for pair, a, b in PAIRS}
_MEASURE_NAMES = {"ssim": "SSIM", "mse": "MSE", "psnr": "PSNR dB", "l_inf": "L∞", "mae": "MAE"}

#: the columns that are not scores: title, tooltip
OTHER_TITLES: dict[str, tuple[str, str]] = {
    "image_name": ("image", "the image's path relative to the folder"),
    "metric": ("metric", "the no-reference quality metric M"),
    "attack": ("attack", "the attack"),
    "attack_preset": ("attack preset", "the attack's preset (empty: defaults)"),
    "defence": ("defence", "the defence D (none: undefended)"),
    "defence_preset": ("defence preset", "the defence's preset (empty: defaults)"),
    "clear": ("clean M(x)", "M(x): the metric's score of the clean image"),
    "attacked": ("attacked M(xₐ)", "M(xₐ): the score of the attacked image"),
    "defended-clear": ("defended clean M(D(x))", "M(D(x)): the score of the defended clean image"),
    "defended-attacked": ("defended attacked M(D(xₐ))", "M(D(xₐ)): the score of the defended attacked image"),
    "nonpurified_rel_gain": ("attack gain (rel.)", "|M(x) − M(xₐ)| / (M(x) + 1e-6)"),
    "both_defended_rel_gain": ("gain D(x)→D(xₐ) (rel.)", "|M(D(x)) − M(D(xₐ))| / (M(D(x)) + 1e-6)"),
    "gain_removed": ("gain removed", "1 − remaining gain / attack gain: share of the attack's gain the defence removed"),
    "nonpurified_robustness": ("robustness (undefended)", "AAAI-24 robustness between M(x) and M(xₐ)"),
    "flag": ("flag", ("no gain: the attack did not move the score toward better; past bounds: the attacked "
                      "score is beyond the metric's best bound, so gains over 1 are not meaningful")),
    "attack_gained": ("attack gained", "whether M(xₐ) is better than M(x) at all"),
    "attack_iterations": ("iterations", "attack iterations run"),
    "iteration_used": ("iteration used", "the iteration whose image was kept (keep-best)"),
    "attack_selection": ("selection", "how the attacked image was chosen"),
    "attack_mode": ("mode", "direct: the bare metric; adaptive: M∘D (BPDA/EOT)"),
    "mos": ("MOS", "mean opinion score from the MOS file"),
    "eot_draws": ("EOT draws", "random draws averaged per score"),
    "error": ("error", "why this item or defence failed (full text in the tooltip)"),
}


def _pair_title(key: str) -> tuple[str, str] | None:
    for k in PAIR_KEYS:
        if key.startswith(k + "_") and key[len(k) + 1:] in _PAIR_NAMES:
            a, b = _PAIR_NAMES[key[len(k) + 1:]]
            name = _MEASURE_NAMES[k]
            return f"{name} {a}→{b}", f"{name} between {a} and {b}"
    return None


def column_title(key: str) -> str:
    """The header text of a column."""
    if key in OTHER_TITLES:
        return OTHER_TITLES[key][0]
    if key in SCORE_TITLES:
        return SCORE_TITLES[key][0].replace("x_a", "xₐ")
    pair = _pair_title(key)
    if pair:
        return pair[0]
    if key.endswith("_std"):
        return column_title(key[:-4]) + " (spread)"
    return key.replace("_", " ").replace("clear", "clean")


def column_tooltip(key: str) -> str:
    """The header tooltip: the formula or definition, and the CSV column name."""
    if key in OTHER_TITLES:
        text = OTHER_TITLES[key][1]
    elif key in SCORE_TITLES:
        text = SCORE_TITLES[key][1].replace("x_a", "xₐ")
    else:
        pair = _pair_title(key)
        text = pair[1] if pair else ("standard deviation over the EOT draws" if key.endswith("_std") else "")
    return f"{text}\n(CSV column: {key})" if text else f"CSV column: {key}"


def is_pair_column(key: str) -> bool:
    return _pair_title(key) is not None


_KEYS = ["image_name", "metric", "attack", "defence"]

#: preset name → the columns shown (None: every column)
PRESETS: dict[str, list[str] | None] = {
    "summary": _KEYS + ["clear", "attacked", "defended-attacked", "nonpurified_abs_gain", "robust_abs_gain",
                        "quality_score", "flag", "error"],
    "gains": _KEYS + ["nonpurified_abs_gain", "robust_abs_gain", "robust_rel_gain", "both_defended_abs_gain",
                      "gain_removed", "nonpurified_rel_gain", "both_defended_rel_gain", "robustness",
                      "nonpurified_robustness", "attack_gained", "flag"],
    "quality": _KEYS + ["quality_score", "quality_score_clear", "geometry_aware_quality", "similarity_score"],
    "pair measures": _KEYS + [f"{k}_{pair}" for pair, _, _ in PAIRS for k in PAIR_KEYS],
    "timing": _KEYS + ["attack_time", "defence_time", "attack_iterations", "attack_queries", "iteration_used"],
    "certified": _KEYS + ["defended-clear", "defended-attacked", "defended-clear_certified_low",
                          "defended-clear_certified_high", "defended-attacked_certified_low",
                          "defended-attacked_certified_high", "certified_radius", "perturbation_l2",
                          "certified_applies", "certified_holds", "certified_width", "certified_note"],
    "budget": _KEYS + ["budget", "budget_reached", "budget_met", "linf_clear_attacked", "psnr_clear_attacked",
                       "ssim_clear_attacked", "nonpurified_abs_gain"],
    "all": None,
}


def certified_summary(rows: list[dict]) -> str:
    """For rows of certified (smoothing) defences: on how many the certificate holds and
    the mean certified width (share of the metric's range); empty when there are none."""
    cert = [r for r in rows if isinstance(r.get("certified_holds"), bool) and not r.get("error")]
    if not cert:
        return ""
    holds = sum(1 for r in cert if r["certified_holds"])
    widths = [r["certified_width"] for r in cert if isinstance(r.get("certified_width"), (int, float))]
    width = f" · mean certified width {sum(widths) / len(widths):.3g}" if widths else ""
    return f"certificate holds on {holds} of {len(cert)} certified rows{width}"


def preset_columns(preset: str, columns: list[str]) -> list[str]:
    """The columns of ``columns`` that ``preset`` shows, in table order."""
    wanted = PRESETS.get(preset)
    if wanted is None:
        return list(columns)
    return [c for c in columns if c in wanted]


def score_line(row: dict | None) -> str:
    """The scores of one result row, as the inspector's caption."""
    if not row:
        return ""
    if row.get("error"):
        return f"<span style='color:#b3261e'>{row['error']}</span>"

    def f(key: str, digits: int = 4) -> str:
        v = row.get(key)
        return f"{v:.{digits}g}" if isinstance(v, (int, float)) else "—"

    return (f"clean M(x) <b>{f('clear')}</b> · attacked M(xₐ) <b>{f('attacked')}</b> · M(D(x)) "
            f"{f('defended-clear')} · M(D(xₐ)) <b>{f('defended-attacked')}</b> · remaining gain "
            f"<b>{f('robust_abs_gain', 3)}</b> (attack gain {f('nonpurified_abs_gain', 3)}) · quality D(xₐ) "
            f"{f('quality_score', 3)}")
