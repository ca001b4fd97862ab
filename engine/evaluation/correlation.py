"""Correlation of metric scores with subjective scores (MOS): SROCC and PLCC.

A MOS file is a CSV of image name and MOS, with or without a header; ``,``, ``;`` and
tab separators are recognised. With a header the name column is the first of
``image_name, image, name, filename, file, img, image_id`` (else the first column) and
the MOS column is ``mos``/``MOS`` (else the first column whose name contains "mos", else
the second column) — so a KonIQ-10k score CSV works as is.

:func:`mos_correlations` gives, per (metric, attack, attack preset, defence, defence
preset), SROCC and PLCC against MOS of the four score columns: ``clear`` M(x),
``attacked`` M(x_a), ``defended-clear`` M(D(x)) and ``defended-attacked`` M(D(x_a)).
"""
from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath
from typing import Any

SCORE_COLUMNS = ("clear", "attacked", "defended-clear", "defended-attacked")
#: Guardians: does the defence keep the metric's ranking of clean images? SROCC(M(x), M(D(x)))
CLEAN_DEFENDED = "srocc_clear_defended-clear"
GROUP_KEYS = ("metric", "attack", "attack_preset", "defence", "defence_preset")
_NAME_COLUMNS = ("image_name", "image", "name", "filename", "file", "img", "image_id", "picture")


class MosError(ValueError):
    """A MOS file cannot be read (message names the file and line)."""


class MosTable(dict):
    """``image name → MOS``. ``get``/``in`` also match by base name or by stem (name
    without extension) when that is unambiguous, so ``sub/a.png`` finds ``a.jpg``'s MOS."""

    def _index(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if getattr(self, "_cache_len", -1) != len(self):
            by_base: dict[str, Any] = {}
            by_stem: dict[str, Any] = {}
            for k, v in self.items():
                for d, key in ((by_base, PurePath(k).name), (by_stem, PurePath(k).stem)):
                    d[key] = v if key not in d else _AMBIGUOUS
            self._by_base, self._by_stem, self._cache_len = by_base, by_stem, len(self)
        return self._by_base, self._by_stem

    def lookup(self, name: str) -> float | None:
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        by_base, by_stem = self._index()
        p = PurePath(str(name).replace("\\", "/"))
        for d, key in ((by_base, p.name), (by_stem, p.stem)):
            v = d.get(key)
            if v is not None and v is not _AMBIGUOUS:
                return v
        return None

    def get(self, name: Any, default: Any = None) -> Any:  # type: ignore[override]
        v = self.lookup(str(name))
        return default if v is None else v

    def __contains__(self, name: object) -> bool:
        return self.lookup(str(name)) is not None


_AMBIGUOUS = object()


def _float(text: str) -> float | None:
    try:
        v = float(text.strip())
    except (ValueError, AttributeError):
        return None
    return v if math.isfinite(v) else None


def read_mos(path: str | os.PathLike) -> MosTable:
    """Read a CSV of image name and MOS.

    Returns:
        :class:`MosTable` (a dict ``image name → MOS``; lookups also match by base name/stem).

    Raises:
        MosError: missing/unreadable file, no rows, a non-numeric MOS (with its line), or an
            image listed twice with different MOS.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MosError(f"MOS file {str(p)!r} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MosError(f"cannot read MOS file {str(p)!r}: {exc}") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise MosError(f"MOS file {str(p)!r} is empty")
    delim = max((",", ";", "\t"), key=lambda d: lines[0].count(d))
    if lines[0].count(delim) == 0:
        raise MosError(f"MOS file {str(p)!r}: expected two columns (image name, MOS) separated by "
                       "',', ';' or a tab")
    rows = list(csv.reader(lines, delimiter=delim))
    header = rows[0]
    has_header = len(header) < 2 or _float(header[1]) is None
    name_col, mos_col = 0, 1
    if has_header:
        low = [h.strip().lower() for h in header]
        name_col = next((low.index(c) for c in _NAME_COLUMNS if c in low), 0)
        mos_col = (low.index("mos") if "mos" in low else
                   next((i for i, h in enumerate(low) if "mos" in h and i != name_col),
                        1 if name_col != 1 else 0))
        rows = rows[1:]
    table = MosTable()
    for lineno, row in enumerate(rows, 2 if has_header else 1):
        if len(row) <= max(name_col, mos_col):
            raise MosError(f"{p.name}, line {lineno}: expected at least {max(name_col, mos_col) + 1} "
                           f"columns, got {len(row)}")
        name, v = row[name_col].strip(), _float(row[mos_col])
        if v is None:
            raise MosError(f"{p.name}, line {lineno}: MOS {row[mos_col]!r} of {name!r} is not a number")
        if not name:
            raise MosError(f"{p.name}, line {lineno}: empty image name")
        if dict.__contains__(table, name) and dict.__getitem__(table, name) != v:
            raise MosError(f"{p.name}, line {lineno}: {name!r} is listed twice with different MOS")
        table[name] = v
    if not table:
        raise MosError(f"MOS file {str(p)!r} has a header but no rows")
    return table


def _finite_pairs(a: Sequence[float], b: Sequence[float]) -> tuple[list[float], list[float]]:
    if len(a) != len(b):
        raise ValueError(f"correlation needs equal lengths, got {len(a)} and {len(b)}")
    keep = [(float(x), float(y)) for x, y in zip(a, b)
            if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]
    return [x for x, _ in keep], [y for _, y in keep]


def _correlate(fn: Any, a: Sequence[float], b: Sequence[float]) -> float:
    xs, ys = _finite_pairs(a, b)
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return float("nan")
    return float(fn(xs, ys)[0])


def srocc(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank-order correlation; NaN with fewer than 3 finite pairs or a constant side."""
    from scipy.stats import spearmanr

    return _correlate(spearmanr, a, b)


def plcc(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson linear correlation; NaN with fewer than 3 finite pairs or a constant side."""
    from scipy.stats import pearsonr

    return _correlate(pearsonr, a, b)


def mos_correlations(rows: Iterable[dict[str, Any]], mos: dict[str, float] | None = None,
                     ) -> dict[tuple[str, ...], dict[str, Any]]:
    """SROCC/PLCC against MOS per configuration.

    Args:
        rows: raw result rows (``image_name``, the four score columns, ``metric``,
            ``attack``, ``attack_preset``, ``defence``, ``defence_preset``; rows with an
            ``error`` are skipped).
        mos: image name → MOS (e.g. from :func:`read_mos`); ``None`` uses each row's
            ``mos`` value.

    Returns:
        ``{(metric, attack, attack_preset, defence, defence_preset): {those five keys,
        "n": images with a MOS, "srocc_<column>", "plcc_<column>" for each score column}}``;
        a correlation is NaN when fewer than 3 images have a MOS.
    """
    lookup = mos if isinstance(mos, MosTable) else (MosTable(mos) if mos is not None else None)
    groups: dict[tuple[str, ...], dict[str, list[float]]] = {}
    for row in rows:
        if row.get("error"):
            continue
        m = lookup.get(row.get("image_name")) if lookup is not None else row.get("mos")
        if m is None or (isinstance(m, float) and math.isnan(m)):
            continue
        key = tuple(str(row.get(k) if row.get(k) is not None else "default") for k in GROUP_KEYS)
        g = groups.setdefault(key, {"mos": [], **{c: [] for c in SCORE_COLUMNS}})
        g["mos"].append(float(m))
        for c in SCORE_COLUMNS:
            v = row.get(c)
            g[c].append(float(v) if v is not None else float("nan"))
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for key, g in groups.items():
        res: dict[str, Any] = dict(zip(GROUP_KEYS, key))
        res["n"] = len(g["mos"])
        for c in SCORE_COLUMNS:
            res[f"srocc_{c}"] = srocc(g[c], g["mos"])
            res[f"plcc_{c}"] = plcc(g[c], g["mos"])
        res[CLEAN_DEFENDED] = srocc(g["clear"], g["defended-clear"])
        out[key] = res
    return out
