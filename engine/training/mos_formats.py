"""Subjective scores in the layouts IQA data sets are downloaded in.

Every reader returns a :class:`SubjectiveSet`: image paths (existing files) and their
scores, higher = better quality. :func:`read_subjective` picks the reader from the
folder's files (``--mos-format auto``) or by name:

==============  =====================================================================
format          what is read (paths relative to the data set folder)
==============  =====================================================================
``mos-csv``     ``mos.csv`` (image name, MOS; the lab's format, see
                :func:`engine.evaluation.correlation.read_mos`), images anywhere below
``koniq10k``    ``koniq10k_scores_and_distributions.csv`` (``image_name``, …,
                ``MOS``, ``SD``, ``MOS_zscore``); images in ``1024x768/`` (or
                ``512x384/``); the score is ``MOS_zscore`` (0–100)
``kadid10k``    ``dmos.csv`` (``dist_img, ref_img, dmos, var``); images in ``images/``;
                despite its name ``dmos`` is a mean opinion score, higher = better
``spaq``        ``Annotations/MOS and Image attribute scores.xlsx`` (``Image name``,
                ``MOS``, attributes); images in ``TestImage/``
``livec``       ``Data/AllImages_release.mat`` + ``Data/AllMOS_release.mat`` (MATLAB);
                images in ``Images/``; the 7 ``trainingImages`` the mat files list
                first have no file in ``Images/`` and are skipped, as pyiqa does
``pipal``       ``Train_Label/*.txt`` (``A0001_00_00.bmp,1394.6`` per line: distorted
                image, Elo score); images in ``Train_Dis/``
``agiqa3k``     ``data.csv`` (``name, prompt, …, mos_quality, std_quality,
                mos_align, std_align``); the score is ``mos_quality``; images beside it
                or in ``images/``
==============  =====================================================================

Example:
    >>> s = read_subjective("/data/kadid10k")            # doctest: +SKIP
    >>> s.format, len(s), s.scores[:2]                   # doctest: +SKIP
    ('kadid10k', 10125, [4.57, 4.33])
"""
from __future__ import annotations

import csv
import math
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from engine.training.options import MOS_FORMATS
from engine.training.pairs import TrainingError


@dataclass
class SubjectiveSet:
    """Images with subjective scores.

    Attributes:
        format: the reader used.
        names: image names relative to the folder (what results rows show).
        paths: absolute image paths, aligned with ``names``.
        scores: one score per image, higher = better.
        missing: listed images with no file (skipped).
    """

    format: str
    names: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingError(f"cannot read {str(path)!r}: {exc}") from None
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise TrainingError(f"{str(path)!r} has no rows")
    return rows


def _number(text: object, where: str) -> float:
    try:
        v = float(str(text).strip())
    except ValueError:
        raise TrainingError(f"{where}: score {text!r} is not a number") from None
    if not math.isfinite(v):
        raise TrainingError(f"{where}: score {text!r} is not finite")
    return v


def _column(rows: list[dict[str, str]], path: Path, *names: str) -> str:
    keys = {k.strip().lower(): k for k in rows[0] if k is not None}
    for n in names:
        if n.lower() in keys:
            return keys[n.lower()]
    raise TrainingError(f"{path.name}: no column {' / '.join(names)} (columns: {', '.join(keys.values())})")


def _collect(fmt: str, entries: list[tuple[str, float]], image_dirs: list[Path],
             root: Path) -> SubjectiveSet:
    """Resolve each listed name in the first image folder that has it."""
    out = SubjectiveSet(fmt)
    for name, score in entries:
        hit = next((d / name for d in image_dirs if (d / name).is_file()), None)
        if hit is None:
            out.missing.append(name)
            continue
        out.names.append(hit.relative_to(root).as_posix() if hit.is_relative_to(root) else name)
        out.paths.append(hit.resolve())
        out.scores.append(score)
    return out


# ---- readers -------------------------------------------------------------------------

def _mos_csv(root: Path) -> SubjectiveSet:
    from engine.evaluation.correlation import MosError, read_mos
    from engine.spec.folders import find_images, find_mos_file

    mos_path = find_mos_file(root)
    if mos_path is None:
        raise TrainingError(f"{str(root)!r} has no mos.csv")
    try:
        table = read_mos(mos_path)
    except MosError as exc:
        raise TrainingError(str(exc)) from None
    out = SubjectiveSet("mos-csv")
    for f in find_images(root):
        p = Path(f)
        rel = p.relative_to(root).as_posix()
        v = table.get(rel)
        if v is None:
            continue
        out.names.append(rel)
        out.paths.append(p.resolve())
        out.scores.append(float(v))
    listed = {Path(k).stem for k in table}
    out.missing = sorted(listed - {Path(n).stem for n in out.names})
    return out


def _csv_entries(path: Path, name_cols: tuple[str, ...], score_cols: tuple[str, ...]) -> list[tuple[str, float]]:
    """(image name, score) of every row of a data set's CSV; each column is the first of
    its candidates that the header has."""
    rows = _read_csv_rows(path)
    name_col, score_col = _column(rows, path, *name_cols), _column(rows, path, *score_cols)
    return [(r[name_col].strip(), _number(r[score_col], f"{path.name}, line {i}")) for i, r in enumerate(rows, 2)]


def _koniq(root: Path) -> SubjectiveSet:
    entries = _csv_entries(root / "koniq10k_scores_and_distributions.csv", ("image_name",), ("MOS_zscore", "MOS"))
    return _collect("koniq10k", entries, [root / "1024x768", root / "512x384", root], root)


def _kadid(root: Path) -> SubjectiveSet:
    entries = _csv_entries(root / "dmos.csv", ("dist_img",), ("dmos",))
    return _collect("kadid10k", entries, [root / "images", root], root)


SPAQ_XLSX = Path("Annotations") / "MOS and Image attribute scores.xlsx"


def _spaq(root: Path) -> SubjectiveSet:
    path = root / SPAQ_XLSX
    table = read_xlsx_first_sheet(path)
    if len(table) < 2:
        raise TrainingError(f"{path.name}: no rows")
    header = [str(h).strip().lower() for h in table[0]]
    try:
        name_col, mos_col = header.index("image name"), header.index("mos")
    except ValueError:
        raise TrainingError(f"{path.name}: expected columns 'Image name' and 'MOS', got {table[0]}") from None
    entries = [(str(r[name_col]).strip(), _number(r[mos_col], f"{path.name}, row {i}"))
               for i, r in enumerate(table[1:], 2) if len(r) > max(name_col, mos_col) and r[name_col]]
    return _collect("spaq", entries, [root / "TestImage", root], root)


def _livec(root: Path) -> SubjectiveSet:
    import numpy as np
    import scipy.io

    data = root / "Data"
    try:
        names = scipy.io.loadmat(data / "AllImages_release.mat")["AllImages_release"]
        mos = scipy.io.loadmat(data / "AllMOS_release.mat")["AllMOS_release"]
    except (OSError, KeyError, ValueError) as exc:
        raise TrainingError(f"cannot read LIVE Challenge's Data/*.mat: {exc}") from None
    flat_names = [str(np.asarray(n).ravel()[0]) for n in np.asarray(names, dtype=object).ravel()]
    flat_mos = [float(v) for v in np.asarray(mos, dtype=float).ravel()]
    if len(flat_names) != len(flat_mos):
        raise TrainingError(f"LIVE Challenge: {len(flat_names)} image names but {len(flat_mos)} MOS")
    return _collect("livec", list(zip(flat_names, flat_mos)), [root / "Images"], root)


def _pipal(root: Path) -> SubjectiveSet:
    entries: list[tuple[str, float]] = []
    for txt in sorted((root / "Train_Label").glob("*.txt")):
        for i, line in enumerate(txt.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split(",")
            if len(parts) < 2:
                raise TrainingError(f"{txt.name}, line {i}: expected 'image,score'")
            entries.append((parts[0].strip(), _number(parts[1], f"{txt.name}, line {i}")))
    if not entries:
        raise TrainingError("PIPAL: Train_Label/ has no label files")
    return _collect("pipal", entries, [root / "Train_Dis", root], root)


def _agiqa3k(root: Path) -> SubjectiveSet:
    entries = _csv_entries(root / "data.csv", ("name",), ("mos_quality",))
    return _collect("agiqa3k", entries, [root, root / "images", root / "AGIQA-3K"], root)


def _is_agiqa(root: Path) -> bool:
    p = root / "data.csv"
    if not p.is_file():
        return False
    with p.open(encoding="utf-8-sig") as f:
        head = f.readline().lower()
    return "mos_quality" in head


#: format → (detector, reader); detection tries them in this order
_FORMATS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], SubjectiveSet]]] = {
    "koniq10k": (lambda r: (r / "koniq10k_scores_and_distributions.csv").is_file(), _koniq),
    "kadid10k": (lambda r: (r / "dmos.csv").is_file(), _kadid),
    "spaq": (lambda r: (r / SPAQ_XLSX).is_file(), _spaq),
    "livec": (lambda r: (r / "Data" / "AllMOS_release.mat").is_file(), _livec),
    "pipal": (lambda r: (r / "Train_Label").is_dir(), _pipal),
    "agiqa3k": (_is_agiqa, _agiqa3k),
    "mos-csv": (lambda r: any((r / n).is_file() for n in ("mos.csv", "MOS.csv", "mos.txt")), _mos_csv),
}


def detect_format(folder: str | Path) -> str:
    """The data set layout of ``folder`` (see the module docstring).

    Raises:
        TrainingError: no known layout.
    """
    root = Path(folder)
    for name, (detect, _) in _FORMATS.items():
        if detect(root):
            return name
    raise TrainingError(f"{str(root)!r}: no subjective scores found (a mos.csv, or a KonIQ-10k, KADID-10k, "
                        "SPAQ, LIVE Challenge, PIPAL or AGIQA-3K folder as downloaded)")


def read_subjective(folder: str | Path, fmt: str = "auto") -> SubjectiveSet:
    """Images and scores of a data set folder.

    Args:
        folder: the data set's root folder, as downloaded.
        fmt: one of :data:`MOS_FORMATS` (``auto`` detects).

    Raises:
        TrainingError: unknown format, unreadable files, or no image with a score.
    """
    root = Path(folder)
    if not root.is_dir():
        raise TrainingError(f"{str(root)!r} is not a folder")
    if fmt not in MOS_FORMATS:
        raise TrainingError(f"unknown MOS format {fmt!r}; known: {', '.join(MOS_FORMATS)}")
    name = detect_format(root) if fmt == "auto" else fmt
    out = _FORMATS[name][1](root)
    if not out.names:
        raise TrainingError(f"{str(root)!r} ({name}): no listed image was found"
                            + (f" (first missing: {out.missing[0]})" if out.missing else ""))
    return out


# ---- a minimal .xlsx reader (SPAQ's annotations; no openpyxl needed) -------------------

_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def _col_index(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref)
    n = 0
    for ch in letters.group(0) if letters else "A":
        n = n * 26 + ord(ch) - 64
    return n - 1


def read_xlsx_first_sheet(path: str | Path) -> list[list[object]]:
    """The first worksheet of an .xlsx file as rows of cell values (str or float).

    Raises:
        TrainingError: not a readable .xlsx file.
    """
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as z:
            shared: list[str] = []
            if "xl/sharedStrings.xml" in z.namelist():
                for si in ElementTree.fromstring(z.read("xl/sharedStrings.xml")).findall("m:si", _NS):
                    shared.append("".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t")))
            sheets = sorted(n for n in z.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n))
            if not sheets:
                raise TrainingError(f"{p.name}: no worksheet")
            root = ElementTree.fromstring(z.read(sheets[0]))
    except (OSError, zipfile.BadZipFile, KeyError, ElementTree.ParseError) as exc:
        raise TrainingError(f"cannot read {str(p)!r} as .xlsx: {exc}") from None
    rows: list[list[object]] = []
    for row in root.iter(f"{{{_NS['m']}}}row"):
        cells: dict[int, object] = {}
        for c in row.findall("m:c", _NS):
            kind, v = c.get("t"), c.find("m:v", _NS)
            if kind == "inlineStr":
                value: object = "".join(t.text or "" for t in c.iter(f"{{{_NS['m']}}}t"))
            elif v is None or v.text is None:
                continue
            elif kind == "s":
                value = shared[int(v.text)]
            elif kind in ("str", "b", "e"):
                value = v.text
            else:
                value = float(v.text)
            cells[_col_index(c.get("r", "A"))] = value
        if cells:
            rows.append([cells.get(i, "") for i in range(max(cells) + 1)])
    return rows
