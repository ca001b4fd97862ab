"""Reports built from a small real run: manifest, means, files, partial runs, CLI."""
from __future__ import annotations

import base64
import csv
import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import torch

from engine.core.labels import fmt

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ("attack_curves", "gain_per_defence", "quality_vs_gain", "strips_attack_gain",
           "strips_defence_failures")


class _Cells(HTMLParser):
    """Collects summary cells (``td[data-score]``) and image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[dict[str, str], str]] = []
        self.srcs: list[str] = []
        self._open: dict[str, str] | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "td" and "data-score" in a:
            self._open, self._text = a, ""
        if tag == "img":
            self.srcs.append(a.get("src", ""))

    def handle_data(self, data):
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "td" and self._open is not None:
            self.cells.append((self._open, self._text))
            self._open = None


def _parse(html: str) -> _Cells:
    p = _Cells()
    p.feed(html)
    return p


KEY = ("metric", "attack", "attack_preset", "defence", "defence_preset", "score")


def _key(d: dict[str, str], prefix: str = "") -> tuple[str, ...]:
    return tuple(d[prefix + k.replace("_", "-")] if prefix else d[k] for k in KEY)


def test_manifest_values_in_report(report_run):
    html = report_run.report.read_text(encoding="utf-8")
    exp = report_run.exp
    assert f"seed {exp.seed}" in html
    assert exp.id in html
    assert "niqe" in html and "ifgsm" in html
    for d in ("jpeg", "median-blur"):
        assert f">{d}<" in html
    assert torch.__version__ in html
    import pyiqa

    assert pyiqa.__version__ in html
    # every resolved parameter of the attack, with the override marked
    assert re.search(r"<b>iters</b>=2 \*", html)
    assert "<b>eps</b>=10/255" in html  # MSU default, not set explicitly
    assert "<b>q</b>=50" in html        # jpeg's default quality
    for name in ("astronaut.png", "coffee.png", "chelsea.png"):
        assert name in html


def test_means_equal_summary_csv(report_run):
    html = report_run.report.read_text(encoding="utf-8")
    with open(report_run.report.parent / "summary.csv", newline="", encoding="utf-8") as f:
        summary = list(csv.DictReader(f))
    assert summary, "the run produced a summary"
    cells: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for attrs, text in _parse(html).cells:
        cells.setdefault(_key(attrs, "data-"), []).append((attrs["data-value"], text))
    checked = 0
    for row in summary:
        found = cells.get(_key(row))
        assert found, f"summary row missing from the report: {row}"
        for value, text in found:
            if row["value"] == "":
                assert value == "" and text == "–"
                continue
            assert math.isclose(float(value), float(row["value"]), rel_tol=1e-12, abs_tol=1e-15)
            assert text == fmt(float(row["value"]))
            checked += 1
    # the main table repeats the key scores: more cells than summary rows with values
    assert checked > sum(1 for r in summary if r["value"] != "")
    gains = [r for r in summary if r["score"] == "robust_abs_gain" and r["attack"] == "total"]
    assert {r["defence"] for r in gains} == {"none", "jpeg", "median-blur"}


def test_no_external_resources(report_run):
    html = report_run.report.read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href|action|poster)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, re.I)
    assert "@import" not in html and "<link" not in html.lower()
    assert not re.search(r"<script[^>]+src", html, re.I)
    srcs = _parse(html).srcs
    assert len(srcs) == len(FIGURES)
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)


def test_every_plot_saved_as_png_and_svg(report_run):
    out = report_run.report.parent
    assert (out / "raw.csv").is_file() and (out / "summary.csv").is_file()
    from PIL import Image

    for stem in FIGURES:
        png, svg = out / "figures" / f"{stem}.png", out / "figures" / f"{stem}.svg"
        assert png.read_bytes().startswith(PNG_MAGIC), stem
        with Image.open(png) as im:
            im.verify()
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg"), stem
        assert f'href="figures/{stem}.svg"' in report_run.report.read_text(encoding="utf-8")


def test_partial_run_says_what_is_missing(report_run):
    total = len(report_run.exp.items())
    partial = report_run.partial.read_text(encoding="utf-8")
    assert f"1 of {total} work items finished" in partial
    assert f"{total - 1} missing" in partial
    assert f'data-missing="{total - 1}"' in partial
    done = report_run.report.read_text(encoding="utf-8")
    assert f"all {total} work items finished" in done and "missing</b>" not in done


def test_report_without_saved_images_says_how_to_enable(report_run, tmp_path):
    from engine.results.report.build import make_strips
    from engine.results.report.data import load_report_data
    from engine.store.db import ResultStore

    with ResultStore(report_run.store, readonly=True) as store:
        data = load_report_data(store)
    data.spec["save_images"] = False
    data.image_lookup = None
    strips, note = make_strips(data, tmp_path)
    assert strips == [] and "not saved" in note and "--save-images" in note
    assert not any(tmp_path.iterdir())


def test_cli_report(report_run, tmp_path, capsys):
    from engine.cli import main

    out = tmp_path / "cli"
    exp_id = report_run.exp.id
    assert main(["report", str(report_run.store), "--out", str(out), "--experiment", exp_id[:6]]) == 0
    assert (out / "report.html").is_file() and str(out / "report.html") in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nothing"), "--out", str(out)]) == 4
    assert "no result store" in capsys.readouterr().err
    assert main(["report", str(report_run.store), "--out", str(out), "--experiment", "zzzz"]) == 4


def test_report_of_a_run_with_nothing_finished(photo_folder, tmp_path):
    from engine.spec.experiment import Experiment
    from engine.spec.folders import find_images
    from engine.results.report import build_report
    from engine.run.driver import run_experiment
    from engine.run.units import CancelToken
    from engine.store.db import ResultStore

    exp = Experiment(images=find_images(photo_folder), root=str(photo_folder), metrics=["niqe"],
                     attacks=["ifgsm"], defences=["jpeg"], seed=5, device="cpu")
    cancel = CancelToken()
    cancel.cancel()
    with ResultStore(tmp_path / "out" / "results.sqlite") as store:
        list(run_experiment(exp, store, cancel=cancel))
    report = build_report(tmp_path / "out", tmp_path / "report")
    html = report.read_text(encoding="utf-8")
    assert "0 of 3 work items finished" in html and "3 missing" in html
    assert "No finished item yet" in html
    assert not (tmp_path / "report" / "figures").exists()
    assert (tmp_path / "report" / "summary.csv").read_text().startswith("metric,")


def test_report_shows_intervals_leaderboard_and_paired(report_run):
    html = report_run.report.read_text(encoding="utf-8")
    out = report_run.report.parent
    with open(out / "summary.csv", newline="", encoding="utf-8") as f:
        summary = list(csv.DictReader(f))
    lows = re.findall(r'data-ci-low="([^"]*)" data-ci-high="([^"]*)"', html)
    assert len(lows) == len(summary)
    for (lo, hi), row in zip(lows, summary):
        assert lo == row["ci_low"] and hi == row["ci_high"]
    assert any(r["ci_low"] for r in summary)  # 3 images: intervals exist
    with open(out / "leaderboard.csv", newline="", encoding="utf-8") as f:
        board = [r for r in csv.DictReader(f) if r["table"] == "defences" and r["attack"] == "all attacks"]
    ranked = sorted((r for r in board if r["rank"]), key=lambda r: int(r["rank"]))
    section = html.split('id="leaderboard"')[1].split("</section>")[0]
    table = section.split('data-attack="all attacks"')[1].split("</table>")[0]
    assert re.findall(r'data-defence="([^"]+)" data-rank="(\d+)"', table) == [
        (r["name"] if r["preset"] == "default" else f'{r["name"]}[{r["preset"]}]', r["rank"]) for r in ranked]
    assert 'id="paired"' in html and "A − B" in html and (out / "paired.csv").is_file()
