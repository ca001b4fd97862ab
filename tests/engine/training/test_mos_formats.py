"""Each data set's subjective scores, read from a small file in its real download layout."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.training.mos_formats import (
    detect_format,
    read_subjective,
    read_xlsx_first_sheet,
)
from engine.training.pairs import TrainingError


def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(path)


def _check(root: Path, fmt: str, expected: dict[str, float]) -> None:
    assert detect_format(root) == fmt
    s = read_subjective(root)
    assert s.format == fmt
    got = {Path(n).name: v for n, v in zip(s.names, s.scores)}
    assert got == pytest.approx(expected)
    assert all(p.is_file() for p in s.paths)


def test_mos_csv(tmp_path: Path):
    _img(tmp_path / "a.png")
    _img(tmp_path / "sub" / "b.png")
    (tmp_path / "mos.csv").write_text("image_name,mos\na.png,3.5\nb.png,1.25\nmissing.png,2\n")
    _check(tmp_path, "mos-csv", {"a.png": 3.5, "b.png": 1.25})
    assert read_subjective(tmp_path).missing == ["missing"]


def test_koniq10k_uses_mos_zscore(tmp_path: Path):
    for n in ("10004473376.jpg", "10007357496.jpg"):
        _img(tmp_path / "1024x768" / n)
    (tmp_path / "koniq10k_scores_and_distributions.csv").write_text(
        '"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"\n'
        '"10004473376.jpg",0,1,40,61,3,105,3.628571429,0.5843038,77.38348351\n'
        '"10007357496.jpg",0,3,47,55,1,106,3.537735849,0.5863277,74.43826432\n')
    _check(tmp_path, "koniq10k", {"10004473376.jpg": 77.38348351, "10007357496.jpg": 74.43826432})


def test_kadid10k(tmp_path: Path):
    for n in ("I01_01_01.png", "I01_01_02.png", "I01.png"):
        _img(tmp_path / "images" / n)
    (tmp_path / "dmos.csv").write_text("dist_img,ref_img,dmos,var\n"
                                       "I01_01_01.png,I01.png,4.57,0.496\nI01_01_02.png,I01.png,4.33,0.869\n")
    _check(tmp_path, "kadid10k", {"I01_01_01.png": 4.57, "I01_01_02.png": 4.33})


def _write_xlsx(path: Path, rows: list[list[object]]) -> None:
    """A minimal Office Open XML workbook (shared strings for text, numbers inline)."""
    strings: list[str] = []
    cells_xml = []
    for r, row in enumerate(rows, 1):
        cells = []
        for c, v in enumerate(row):
            ref = f"{chr(65 + c)}{r}"
            if isinstance(v, str):
                strings.append(v)
                cells.append(f'<c r="{ref}" t="s"><v>{len(strings) - 1}</v></c>')
            else:
                cells.append(f'<c r="{ref}"><v>{v}</v></c>')
        cells_xml.append(f'<row r="{r}">{"".join(cells)}</row>')
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", f"<workbook {ns}/>")
        z.writestr("xl/sharedStrings.xml", f'<sst {ns}>' + "".join(f"<si><t>{s}</t></si>" for s in strings) + "</sst>")
        z.writestr("xl/worksheets/sheet1.xml", f'<worksheet {ns}><sheetData>{"".join(cells_xml)}</sheetData></worksheet>')


def test_spaq_reads_the_annotation_workbook(tmp_path: Path):
    for n in ("00001.jpg", "00002.jpg"):
        _img(tmp_path / "TestImage" / n)
    _write_xlsx(tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx",
                [["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"],
                 ["00001.jpg", 42.65, 43.3, 39.4, 46.2, 44.3, 40.6],
                 ["00002.jpg", 48.1, 49.9, 50.2, 48.8, 48.3, 45.6]])
    _check(tmp_path, "spaq", {"00001.jpg": 42.65, "00002.jpg": 48.1})


def test_xlsx_reader_rejects_a_non_workbook(tmp_path: Path):
    p = tmp_path / "x.xlsx"
    p.write_text("not a zip")
    with pytest.raises(TrainingError, match="xlsx"):
        read_xlsx_first_sheet(p)


def test_live_challenge_mat_files(tmp_path: Path):
    import scipy.io

    names = np.empty((3, 1), dtype=object)
    names[:, 0] = ["t1.bmp", "3.bmp", "5.bmp"]  # the first: a training image with no file in Images/
    (tmp_path / "Data").mkdir()
    scipy.io.savemat(tmp_path / "Data" / "AllImages_release.mat", {"AllImages_release": names})
    scipy.io.savemat(tmp_path / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.array([[60.0, 63.5, 25.2]])})
    for n in ("3.bmp", "5.bmp"):
        _img(tmp_path / "Images" / n)
    _check(tmp_path, "livec", {"3.bmp": 63.5, "5.bmp": 25.2})
    assert read_subjective(tmp_path).missing == ["t1.bmp"]


def test_pipal_label_files(tmp_path: Path):
    (tmp_path / "Train_Label").mkdir()
    (tmp_path / "Train_Label" / "A0001.txt").write_text("A0001_00_00.bmp,1394.6\nA0001_01_00.bmp,1450.25\n")
    (tmp_path / "Train_Label" / "A0002.txt").write_text("A0002_00_00.bmp,1302.0\n")
    for n in ("A0001_00_00.bmp", "A0001_01_00.bmp", "A0002_00_00.bmp"):
        _img(tmp_path / "Train_Dis" / n)
    _check(tmp_path, "pipal", {"A0001_00_00.bmp": 1394.6, "A0001_01_00.bmp": 1450.25, "A0002_00_00.bmp": 1302.0})


def test_agiqa3k_quality_not_alignment(tmp_path: Path):
    for n in ("AttnGAN_normal_000.jpg", "AttnGAN_normal_001.jpg"):
        _img(tmp_path / n)
    (tmp_path / "data.csv").write_text(
        "name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align\n"
        "AttnGAN_normal_000.jpg,statue of a pharaoh,,,,0.3333,0.72,1.01,0.9\n"
        "AttnGAN_normal_001.jpg,a cat,,,,1.2001,0.6,2.5,0.7\n")
    _check(tmp_path, "agiqa3k", {"AttnGAN_normal_000.jpg": 0.3333, "AttnGAN_normal_001.jpg": 1.2001})


def test_explicit_format_and_clear_errors(tmp_path: Path):
    with pytest.raises(TrainingError, match="no subjective scores found"):
        read_subjective(tmp_path)
    with pytest.raises(TrainingError, match="unknown MOS format"):
        read_subjective(tmp_path, "tid2013")
    (tmp_path / "dmos.csv").write_text("dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,abc,0.1\n")
    with pytest.raises(TrainingError, match="line 2"):
        read_subjective(tmp_path, "kadid10k")

