"""``python main.py sma``: the correlation attack end to end on a folder with a synthetic MOS."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from scipy.stats import pearsonr, spearmanr

from engine.cli import main
from engine.core.errors import EXIT_OK, EXIT_USAGE
from tests.conftest import photo

EPS = 4 / 255


@pytest.fixture(scope="module")
def mos_folder(tmp_path_factory):
    """Real photos degraded by Gaussian noise at known levels, saved as PNGs, with a
    synthetic MOS that falls with the level (+ 2 per photo to break ties), one extra image
    without a MOS, and the MOS file in the folder."""
    folder = tmp_path_factory.mktemp("sma_set")
    rng = np.random.default_rng(0)
    lines = ["image_name,MOS"]
    for k, name in enumerate(("astronaut", "coffee", "chelsea")):
        x = photo(name, (64, 64)).astype(np.float64)
        for lvl, s in enumerate((0.0, 0.05, 0.1)):
            y = np.clip(x + 255 * s * rng.standard_normal(x.shape), 0, 255).round().astype(np.uint8)
            Image.fromarray(y).save(folder / f"{name}_{lvl}.png")
            lines.append(f"{name}_{lvl}.png,{80.0 - 25 * lvl + 2 * k}")
    Image.fromarray(photo("rocket", (64, 64))).save(folder / "no_mos.png")
    (folder / "mos.csv").write_text("\n".join(lines) + "\n")
    return folder


def _load(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255


def test_sma_command_lowers_srocc_and_writes_rows(mos_folder, tmp_path, brisque, capsys):
    out = tmp_path / "out"
    rc = main(["sma", str(mos_folder), "--metric", "brisque", "--eps", "4/255", "--iters", "10",
               "--out", str(out), "--device", "cpu", "--save-images"])
    assert rc == EXIT_OK
    printed = capsys.readouterr().out
    assert "1 without a MOS left out" in printed
    with open(out / "sma.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9 and "no_mos.png" not in {r["image_name"] for r in rows}
    mos = [float(r["mos"]) for r in rows]
    # the correlations re-derived from the per-image scores
    good = lambda col: [brisque.sign * float(r[col]) for r in rows]  # noqa: E731
    before, after = spearmanr(good("clear"), mos)[0], spearmanr(good("attacked"), mos)[0]
    assert before > 0.3 and after < before - 0.5
    summary = json.loads((out / "sma.json").read_text())
    assert summary["images"] == 9 and summary["left_out_without_mos"] == 1
    assert summary["srocc_before"] == pytest.approx(before, abs=1e-6)
    assert summary["srocc_after"] == pytest.approx(after, abs=1e-6)
    assert summary["plcc_after"] == pytest.approx(pearsonr(good("attacked"), mos)[0], abs=1e-6)
    assert all(float(r["l_inf"]) <= EPS + 1e-6 for r in rows)
    assert all(0.8 < float(r["ssim"]) <= 1.0 for r in rows)
    # the saved images: within ε of the clean files (both on the 1/255 grid, ε = 4/255)
    for r in rows:
        clean, adv = _load(mos_folder / r["image_name"]), _load(out / "images" / r["image_name"])
        assert np.abs(adv - clean).max() <= EPS + 1e-9


def test_sma_command_refuses_bad_input(mos_folder, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(photo("astronaut", (32, 32))).save(bare / f"{name}.png")
    assert main(["sma", str(bare), "--metric", "brisque", "--out", str(tmp_path / "o")]) == EXIT_USAGE
    assert "no MOS file" in capsys.readouterr().err
    (bare / "mos.csv").write_text("a.png,1\nb.png,2\n")
    assert main(["sma", str(bare), "--metric", "brisque", "--out", str(tmp_path / "o")]) == EXIT_USAGE
    assert "at least 3 images with a MOS" in capsys.readouterr().err
    (bare / "mos.csv").write_text("a.png,1\nb.png,oops\n")
    assert main(["sma", str(bare), "--metric", "brisque", "--out", str(tmp_path / "o")]) == EXIT_USAGE
    assert "line 2" in capsys.readouterr().err
    (bare / "mos.csv").write_text("a.png,1\nb.png,2\nc.png,3\n")
    Image.fromarray(photo("coffee", (40, 32))).save(bare / "c.png")
    assert main(["sma", str(bare), "--metric", "brisque", "--out", str(tmp_path / "o")]) == EXIT_USAGE
    assert "--size" in capsys.readouterr().err
    assert main(["sma", str(bare), "--metric", "no-such-metric", "--size", "32",
                 "--out", str(tmp_path / "o")]) == EXIT_USAGE
    assert not (tmp_path / "o").exists()
