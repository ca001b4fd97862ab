"""SROCC/PLCC against MOS, and reading MOS files."""
from __future__ import annotations

import math

import pytest

from engine.evaluation.correlation import (
    MosError,
    mos_correlations,
    plcc,
    read_mos,
    srocc,
)


def test_rank_and_linear_correlation_on_hand_made_numbers():
    a = [1.0, 2.0, 3.0, 4.0, 5.0]
    cubed = [v ** 3 for v in a]
    assert srocc(a, cubed) == pytest.approx(1.0)
    assert srocc(a, cubed[::-1]) == pytest.approx(-1.0)
    assert plcc(a, [2 * v + 1 for v in a]) == pytest.approx(1.0)
    assert 0.9 < plcc(a, cubed) < 1.0  # monotone but not linear
    assert srocc([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_too_few_or_degenerate_points_give_nan():
    assert math.isnan(srocc([1, 2], [2, 1]))
    assert math.isnan(plcc([1, 2, float("nan"), 4], [1, 2, 3, float("nan")]))  # 2 finite pairs left
    assert math.isnan(srocc([1, 1, 1], [1, 2, 3]))
    assert srocc([1, 2, float("nan"), 3, 4], [1, 2, 99, 3, 4]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="equal lengths"):
        srocc([1, 2, 3], [1, 2])


@pytest.mark.parametrize("text", [
    "image_name,MOS\na.png,3.5\nb.png,1.25\n",
    "a.png,3.5\nb.png,1.25\n",
    "name;mos\na.png;3.5\nb.png;1.25\n",
    "image_name,c1,c2,MOS,SD\na.png,1,2,3.5,0.1\nb.png,4,5,1.25,0.2\n",
    "\ufefffile\tscore\na.png\t3.5\n\nb.png\t1.25\n",
])
def test_read_mos_accepts_common_layouts(tmp_path, text):
    p = tmp_path / "mos.csv"
    p.write_text(text, encoding="utf-8")
    mos = read_mos(p)
    assert dict(mos) == {"a.png": 3.5, "b.png": 1.25}


def test_mos_lookup_matches_base_name_and_stem(tmp_path):
    p = tmp_path / "mos.csv"
    p.write_text("image,mos\nsub/a.jpg,2\nb.png,4\nx/c.png,1\ny/c.png,5\n")
    mos = read_mos(p)
    assert mos.get("a.png") == 2.0 and mos.get("other/b.png") == 4.0
    assert mos.get("c.png") is None  # ambiguous: two different c.png
    assert "zzz.png" not in mos and (mos or {}).get("zzz.png") is None


@pytest.mark.parametrize("text, match", [
    ("image,mos\na.png,good\n", "line 2"),
    ("", "empty"),
    ("image,mos\n", "no rows"),
    ("a.png,1\na.png,2\n", "twice"),
    ("just one column\n", "two columns"),
])
def test_read_mos_errors_are_clear(tmp_path, text, match):
    p = tmp_path / "mos.csv"
    p.write_text(text)
    with pytest.raises(MosError, match=match):
        read_mos(p)


def test_missing_mos_file(tmp_path):
    with pytest.raises(MosError, match="not found"):
        read_mos(tmp_path / "nope.csv")


def _row(name, defence, clear, attacked, dc, da, **extra):
    return {"image_name": name, "metric": "niqe", "attack": "ifgsm", "attack_preset": "default",
            "defence": defence, "defence_preset": "default", "clear": clear, "attacked": attacked,
            "defended-clear": dc, "defended-attacked": da, **extra}


def test_mos_correlations_per_configuration():
    mos = {"a.png": 1.0, "b.png": 2.0, "c.png": 3.0, "d.png": 4.0}
    rows = []
    for i, name in enumerate(mos):
        rows.append(_row(name, "none", clear=i, attacked=10 - i, dc=i, da=10 - i))
        rows.append(_row(name, "jpeg", clear=i, attacked=5.0, dc=i * i, da=[3, 1, 2, 4][i]))
        rows.append(_row(name, "blur", clear=i, attacked=5.0, dc=[2, 0, 3, 1][i], da=0.0))
    rows.append(_row("e.png", "jpeg", 0, 0, 0, 0))  # no MOS: ignored
    rows.append(_row("a.png", "jpeg", 99, 99, 99, 99, error="failed"))  # failed row: ignored
    res = mos_correlations(rows, mos)
    none = res[("niqe", "ifgsm", "default", "none", "default")]
    jpeg = res[("niqe", "ifgsm", "default", "jpeg", "default")]
    assert none["n"] == 4 and jpeg["n"] == 4
    assert none["srocc_clear"] == pytest.approx(1.0) and none["srocc_attacked"] == pytest.approx(-1.0)
    assert none["plcc_defended-clear"] == pytest.approx(1.0)
    assert jpeg["srocc_defended-clear"] == pytest.approx(1.0)
    assert jpeg["srocc_defended-attacked"] == pytest.approx(srocc([3, 1, 2, 4], [1, 2, 3, 4]))
    assert math.isnan(jpeg["srocc_attacked"])  # constant scores
    # Guardians' SROCC(M(x), M(D(x))), beside the MOS correlations: jpeg keeps the clean ranking
    assert jpeg["srocc_clear_defended-clear"] == pytest.approx(1.0)
    blur = res[("niqe", "ifgsm", "default", "blur", "default")]
    assert blur["srocc_clear_defended-clear"] == pytest.approx(srocc([0, 1, 2, 3], [2, 0, 3, 1]))
    from_rows = mos_correlations([dict(r, mos=mos.get(r["image_name"])) for r in rows], None)
    assert from_rows[("niqe", "ifgsm", "default", "none", "default")]["srocc_clear"] == pytest.approx(1.0)
