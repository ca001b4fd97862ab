"""Image strips (clean / attacked / defended / difference) for the most telling cases.

Two selections: where the attack gained most (no defence) and where a defence failed
most (largest gain left after it). Images are the PNGs the run saved; nothing is
recomputed, so a strip shows exactly what was scored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from engine.results.report.data import ImageLookup
from engine.results.report.figures import new_figure, report_style
from engine.core.labels import as_float, component_label, fmt

DISPLAY_SIZE = 320  # longest side of a panel in pixels: keeps PNG/SVG/HTML small



@dataclass(frozen=True)
class StripCase:
    """One strip: an image, an attack and the defence whose output is shown."""

    row: dict[str, Any]        # the raw row of the defence shown
    attack_row: dict[str, Any]  # the ``none`` row of the same item (attack without defence)
    reason: str                 # "attack" or "defence"


def _defence_label(row: dict[str, Any]) -> str:
    return component_label(row.get("defence"), row.get("defence_preset"))


def select_cases(rows: list[dict[str, Any]], k: int = 3) -> tuple[list[StripCase], list[StripCase]]:
    """The ``k`` items where the attack gained most and the ``k`` worst defence outcomes.

    Attack cases rank ``defence == none`` rows by ``nonpurified_abs_gain`` and show the
    defence that left the least gain on that item; defence cases rank the other rows by
    ``robust_abs_gain`` (each item's worst defence). Both prefer distinct images.

    Returns:
        ``(attack_cases, defence_cases)``.
    """
    def gain(r: dict[str, Any], key: str) -> float:
        v = as_float(r.get(key))
        return -math.inf if math.isnan(v) else v

    usable = [r for r in rows if not r.get("error") and not math.isnan(as_float(r.get("robust_abs_gain")))]
    base = {r.get("item_id"): r for r in usable if r.get("defence") == "none"}
    defended = [r for r in usable if r.get("defence") != "none"]
    attack_order = sorted(base.values(), key=lambda r: -gain(r, "nonpurified_abs_gain"))
    attack_cases = []
    for r in _diverse(attack_order, k):
        mine = [d for d in defended if d.get("item_id") == r.get("item_id")]
        best = min(mine, key=lambda d: gain(d, "robust_abs_gain")) if mine else r
        attack_cases.append(StripCase(best, r, "attack"))
    worst_per_item: dict[Any, dict[str, Any]] = {}
    for r in sorted(defended, key=lambda r: -gain(r, "robust_abs_gain")):
        if r.get("item_id") in base:
            worst_per_item.setdefault(r.get("item_id"), r)
    defence_cases = [StripCase(r, base[r.get("item_id")], "defence")
                     for r in _diverse(list(worst_per_item.values()), k)]
    return attack_cases, defence_cases


def _diverse(ranked: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The first ``k`` rows, preferring rows of images not shown yet (ranking kept)."""
    picked: list[dict[str, Any]] = []
    names: set[Any] = set()
    for r in ranked:
        if len(picked) < k and r.get("image_name") not in names:
            picked.append(r)
            names.add(r.get("image_name"))
    rest = [r for r in ranked if not any(r is p for p in picked)]
    picked += rest[:k - len(picked)]
    order = {id(r): i for i, r in enumerate(ranked)}
    return sorted(picked, key=lambda r: order[id(r)])


def _wrap(label: str, width: int = 30) -> str:
    """Break a long component label after ``[`` or ``,`` so panel titles do not collide."""
    if len(label) <= width:
        return label
    cut = max(label.rfind(",", 0, width), label.rfind("[", 0, width))
    return label if cut <= 0 else label[:cut + 1] + "\n" + _wrap(label[cut + 1:], width)


def _load(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def _shrink(img: np.ndarray) -> np.ndarray:
    """Box-downsample an H×W×3 or H×W float image so its longest side is DISPLAY_SIZE."""
    h, w = img.shape[:2]
    scale = DISPLAY_SIZE / max(h, w)
    if scale >= 1:
        return img
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if img.ndim == 2:  # float mode keeps small differences that uint8 would round away
        return np.asarray(Image.fromarray(img.astype(np.float32), mode="F").resize(size, Image.Resampling.BOX))
    as_u8 = Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(as_u8.resize(size, Image.Resampling.BOX), dtype=np.float32) / 255.0


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape != b.shape:  # geometric defences may change the size: compare on a's grid
        b = np.asarray(Image.fromarray((b * 255).astype(np.uint8)).resize(a.shape[1::-1]),
                       dtype=np.float32) / 255.0
    return np.abs(a - b).mean(axis=2)


def strip_figure(cases: list[StripCase], lookup: ImageLookup,
                 label_of: Callable[[dict[str, Any]], str | None]) -> Figure | None:
    """Draw the strips of ``cases`` as one figure (a row per case).

    Args:
        cases: from :func:`select_cases`.
        lookup: ``(item_id, kind, defence_label) -> Path | None`` for the saved PNGs
            (kinds ``clean``, ``attacked``, ``defended-clean``, ``defended-attacked``).
        label_of: the store's defence label for a row (what ``lookup`` expects).

    Returns:
        The figure, or None when no case has its images on disk.
    """
    loaded = []
    for c in cases:
        item = str(c.row.get("item_id"))
        clean, attacked = _load(lookup(item, "clean", None)), _load(lookup(item, "attacked", None))
        dlab = label_of(c.row)
        d_att = _load(lookup(item, "defended-attacked", dlab)) if c.row.get("defence") != "none" else attacked
        d_cln = _load(lookup(item, "defended-clean", dlab)) if c.row.get("defence") != "none" else clean
        if clean is None or attacked is None:
            continue
        loaded.append((c, clean, attacked, d_att, d_cln))
    if not loaded:
        return None
    with report_style():
        fig = new_figure(9.0, 2.45 * len(loaded) + 0.1)
        axes = fig.subplots(len(loaded), 4, squeeze=False)
        for ax_row, (c, clean, attacked, d_att, d_cln) in zip(axes, loaded):
            r, a = c.row, c.attack_row
            metric = r.get("metric")
            dlab = _defence_label(r)
            if c.reason == "attack":
                diff, diff_title = _diff(attacked, clean), "|x_a − x|"
            elif d_att is not None and d_cln is not None:
                diff, diff_title = _diff(d_att, d_cln), "|D(x_a) − D(x)|"
            else:
                diff, diff_title = _diff(attacked, clean), "|x_a − x|"
            dmax = float(diff.max())
            panels = [
                (clean, f"clean\n{metric} = {fmt(a.get('clear'))}"),
                (attacked, _wrap(f"attacked: {component_label(a.get('attack'), a.get('attack_preset'))}")
                 + f"\n{metric} = {fmt(a.get('attacked'))}, gain {fmt(a.get('nonpurified_abs_gain'), 3)}"),
                (d_att, _wrap(f"defended: {dlab}") + f"\n{metric} = {fmt(r.get('defended-attacked'))}, "
                        f"left {fmt(r.get('robust_abs_gain'), 3)}"),
            ]
            for ax, (img, title) in zip(ax_row[:3], panels):
                if img is None:
                    ax.text(0.5, 0.5, "not saved", ha="center", va="center", color="#888888")
                else:
                    ax.imshow(_shrink(img), interpolation="none")
                ax.set_title(title, fontsize=7.5)
            ax_row[3].imshow(_shrink(diff), cmap="magma",
                             vmin=0, vmax=max(dmax, 1e-6), interpolation="none")
            ax_row[3].set_title(f"{diff_title}\nmax {dmax * 255:.1f}/255 (scaled)", fontsize=7.5)
            for ax in ax_row:
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for s in ax.spines.values():
                    s.set_visible(False)
            ax_row[0].set_ylabel(str(r.get("image_name")), fontsize=8)
    return fig
