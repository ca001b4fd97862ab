"""Plug-in components run end to end through the CLI like built-ins: rows, summary,
report; the spec and the store's manifest record where their code came from; budgets
and studies take them; a bad plug-in stops a command with one line and exit code 2 and
the built-ins still run."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch

from engine.cli import main, make_parser
from engine.core.errors import EXIT_OK, EXIT_USAGE
from engine.plugins.loader import file_hash
from engine.store.db import ResultStore


def _rows(out: Path) -> list[dict]:
    with open(out / "raw.csv", newline="") as f:
        return list(csv.DictReader(f))


def _summary(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def _run(photos: Path, out: Path, *extra: str) -> int:
    return main(["run", str(photos), "--out", str(out), "--device", "cpu", "--seed", "5", "-q", *extra])


def _manifest(out: Path) -> dict:
    with ResultStore(out / "results.sqlite") as store:
        return store.manifest()


def _report(out: Path) -> str:
    assert main(["report", str(out), "--out", str(out / "report")]) == EXIT_OK
    return (out / "report" / "report.html").read_text(encoding="utf-8")


def test_file_plugins_run_end_to_end(small_photos, plugin_files, tmp_path):
    out = tmp_path / "out"
    rc = _run(small_photos, out, "--plugin", str(plugin_files["metric"]), "--plugin", str(plugin_files["attack"]),
              "--plugin", str(plugin_files["defence"]), "--metric", "p-sharp", "--attack", "p-ifgsm:iters=3",
              "--defence", "p-tv:steps=5")
    assert rc == EXIT_OK
    rows = _rows(out)
    assert len(rows) == 2 * 2  # two images × (none, p-tv)
    assert {r["metric"] for r in rows} == {"p-sharp"} and {r["defence"] for r in rows} == {"none", "p-tv"}
    for r in rows:
        assert not r.get("error")
        if r["defence"] == "none":  # the plug-in attack raised the plug-in metric's score
            assert float(r["attacked"]) > float(r["clear"])
    assert {s["metric"] for s in _summary(out)} == {"p-sharp"}
    manifest = _manifest(out)
    recorded = {p["source"]: p for p in manifest["plugins"]}
    for path in plugin_files.values():
        assert recorded[str(path)]["sha256"] == file_hash(path)
        assert recorded[str(path)]["way"] == "file"
    assert sorted(manifest["spec"]["plugins"]) == sorted(str(p) for p in plugin_files.values())
    html = _report(out)
    assert "p-sharp" in html and "p-tv" in html and file_hash(plugin_files["metric"])[:16] in html


def test_plugins_from_the_experiment_json_and_the_environment(small_photos, plugin_files, tmp_path, monkeypatch):
    config = plugin_files["metric"].parent / "exp.json"
    config.write_text(json.dumps({"plugins": [plugin_files["metric"].name], "metrics": ["p-sharp"],
                                  "attacks": ["p-ifgsm:iters=2"]}), encoding="utf-8")
    monkeypatch.setenv("IQA_LAB_PLUGINS", os.pathsep.join([str(plugin_files["attack"]), str(plugin_files["defence"])]))
    out = tmp_path / "out"
    assert _run(small_photos, out, "--config", str(config), "--defence", "p-tv:steps=3") == EXIT_OK
    assert {r["defence"] for r in _rows(out)} == {"none", "p-tv"}
    spec_plugins = _manifest(out)["spec"]["plugins"]
    assert spec_plugins[0] == str(plugin_files["metric"])  # the JSON's, relative to the JSON file
    assert set(spec_plugins) == {str(p) for p in plugin_files.values()}  # and the used ones from the environment


def test_entry_point_plugins_run_end_to_end(small_photos, entry_point_dist, tmp_path):
    out = tmp_path / "out"
    assert _run(small_photos, out, "--metric", "ep-sharp", "--attack", "ep-ifgsm:iters=2",
                "--defence", "ep-tv:steps=3") == EXIT_OK
    rows = _rows(out)
    assert len(rows) == 4 and not any(r.get("error") for r in rows)
    assert {s["defence"] for s in _summary(out)} == {"none", "ep-tv"}
    recorded = _manifest(out)["plugins"]  # one record per entry point
    assert {(p["source"], p["version"], p["way"]) for p in recorded} == {("iqa-lab-test-pkg", "1.2", "entry-point")}
    assert sorted(c for p in recorded for c in p["components"]) == ["attack:ep-ifgsm", "defence:ep-tv",
                                                                    "metric:ep-sharp"]
    assert "package iqa-lab-test-pkg 1.2" in _report(out)


def test_a_torchscript_metric_is_attacked_through_its_gradient(small_photos, torchscript_file, tmp_path):
    from engine.metrics import create_metric
    from tests.engine.plugins.conftest import TinyIqa

    spec = f"torchscript:path={torchscript_file}:lower_better=0:range=0,1"
    metric = create_metric("torchscript", path=str(torchscript_file), lower_better=False, range="0,1")
    assert metric.bounds == (0.0, 1.0) and metric.lower_better is False
    torch.manual_seed(3)
    reference = TinyIqa()  # the same seeded weights as the file's
    x = torch.rand(2, 3, 20, 20, requires_grad=True)
    assert torch.allclose(metric.score(x), reference(x).detach())
    metric.score(x, grad=True).sum().backward()
    assert float(x.grad.abs().sum()) > 0
    out = tmp_path / "out"
    assert _run(small_photos, out, "--metric", spec, "--attack", "ifgsm:iters=3,pgd:iters=3",
                "--defence", "jpeg") == EXIT_OK
    rows = [r for r in _rows(out) if r["defence"] == "none"]
    assert len(rows) == 4
    for r in rows:  # white-box attacks raise it: the gradient flows through the scripted model
        assert float(r["attacked"]) > float(r["clear"]), r
    [ts] = _manifest(out)["plugins"]
    assert ts["way"] == "torchscript" and ts["sha256"] == file_hash(torchscript_file)
    assert _report(out).count("torchscript") >= 1


def test_a_lower_better_torchscript_metric_is_pushed_down(small_photos, torchscript_file, tmp_path):
    out = tmp_path / "out"
    assert _run(small_photos, out, "--metric", f"torchscript:path={torchscript_file}:lower_better=1:range=0,1",
                "--attack", "ifgsm:iters=3", "--defence", "none") == EXIT_OK
    for r in _rows(out):
        assert float(r["attacked"]) < float(r["clear"])


def test_a_missing_torchscript_file_is_refused_before_the_run(small_photos, tmp_path, capsys):
    assert _run(small_photos, tmp_path / "o", "--metric", f"torchscript:path={tmp_path}/none.pt",
                "--attack", "ifgsm") == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err


def test_budget_calibration_takes_a_plugin_attack_and_metric(small_photos, plugin_files, tmp_path):
    out = tmp_path / "out"
    rc = _run(small_photos, out, "--plugin", str(plugin_files["metric"]), "--plugin", str(plugin_files["attack"]),
              "--metric", "p-sharp", "--attack", "p-ifgsm:iters=2", "--defence", "none", "--budget", "linf-2")
    assert rc == EXIT_OK
    presets = json.loads((out / "budgets.json").read_text())
    entry = presets[0] if isinstance(presets, list) else next(iter(presets.values()))
    text = json.dumps(entry)
    assert "p-ifgsm" in text and "p-sharp" in text
    rows = _rows(out)
    assert all(r["budget"] == "linf-2" for r in rows)
    assert all(float(r["l_inf_clear_attacked"]) <= 2 / 255 + 1e-6 for r in rows)


def test_a_study_runs_on_a_plugin_metric(small_photos, plugin_files):
    from engine.cli.run import build_experiment
    from engine.plugins import load_path
    from engine.run.prepare import check

    load_path(plugin_files["metric"])
    args = make_parser().parse_args(["run", str(small_photos), "--out", "o", "--study", "guardians-lite",
                                     "--metric", "p-sharp"])
    exp = build_experiment(args)
    assert [m.name for m in exp.metrics] == ["p-sharp"] and len(exp.attacks) == 4 and exp.budget == "linf-8"
    assert check(exp) == []


def test_list_shows_where_a_plugin_comes_from(plugin_files, entry_point_dist, capsys):
    assert main(["list", "--json", "--plugin", str(plugin_files["defence"])]) == EXIT_OK
    cat = json.loads(capsys.readouterr().out)
    by = {c["name"]: c for kind in cat.values() for c in kind}
    assert by["p-tv"]["plugin"] == f"file {plugin_files['defence']}"
    assert by["ep-sharp"]["plugin"] == "package iqa-lab-test-pkg 1.2"
    assert by["jpeg"]["plugin"] is None and by["niqe"]["plugin"] is None
    assert [p["name"] for p in by["p-tv"]["params"]] == ["weight", "steps", "step"]
    assert main(["list", "--plugin", str(plugin_files["defence"])]) == EXIT_OK
    text = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith("p-tv "))
    assert text[at + 1].strip() == f"plug-in: file {plugin_files['defence']}"
    assert text[at + 2].strip() == "weight=0.05; steps=20; step=51/255"


@pytest.mark.parametrize("command", [["list"], ["export", "x", "--out", "y"], ["report", "x", "--out", "y"],
                                     ["check", "x"], ["new-plugin", "metric", "zz"]])
def test_every_command_refuses_a_bad_plugin_in_one_line_with_exit_code_2(tmp_path, capsys, command):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nraise ValueError('nope')\n")
    assert main([*command, "--plugin", str(bad)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{bad}:2: ValueError: nope" in err


def test_a_bad_plugin_in_the_experiment_json_is_refused(small_photos, tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("from engine.api import METRICS, Metric\n\n@METRICS.register('brisque')\nclass X(Metric):\n"
                   "    def forward(self, x):\n        return x.mean((1, 2, 3))\n")
    config = tmp_path / "exp.json"
    config.write_text(json.dumps({"plugins": ["bad.py"]}))
    assert _run(small_photos, tmp_path / "o", "--config", str(config), "--metric", "brisque",
                "--attack", "ifgsm") == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{bad}:3" in err and "already exists" in err


def test_builtins_still_run_after_a_bad_plugin(tmp_path, photo_folder, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("from engine.api import DEFENCES, Defence\n\n@DEFENCES.register('jpeg')\nclass X(Defence):\n"
                   "    def forward(self, x, generator):\n        return x\n")
    assert main(["list", "--plugin", str(bad)]) == EXIT_USAGE
    assert "defence 'jpeg' is already registered" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["run", str(photo_folder), "--metric", "niqe", "--attack", "ifgsm:iters=1", "--defence", "jpeg",
                 "--out", str(out), "--device", "cpu", "-q"]) == EXIT_OK
    assert len(_rows(out)) == 3 * 2 and not any(r.get("error") for r in _rows(out))


def test_an_edited_plugin_is_computed_again_not_resumed(small_photos, plugin_files, tmp_path):
    out = tmp_path / "out"
    args = ("--plugin", str(plugin_files["metric"]), "--metric", "p-sharp", "--attack", "ifgsm:iters=1",
            "--defence", "none")
    assert _run(small_photos, out, *args) == EXIT_OK
    assert _run(small_photos, out, *args) == EXIT_OK  # unchanged: resumed, nothing new
    with ResultStore(out / "results.sqlite") as store:
        [first] = store.experiments()
        code = store.experiment(first["id"]).plugin_code
    assert code == {"metric:p-sharp": file_hash(plugin_files["metric"])}
    path = plugin_files["metric"]
    path.write_text(path.read_text().replace("1.0 - torch.exp(", "0.5 - 0.5 * torch.exp("), encoding="utf-8")
    assert _run(small_photos, out, *args) == EXIT_OK
    with ResultStore(out / "results.sqlite") as store:
        experiments = store.experiments()
        assert len(experiments) == 2  # the edited code made a new experiment, computed afresh
        latest = store.experiment(None)
        assert latest.plugin_code == {"metric:p-sharp": file_hash(path)}
        assert len(store.rows(latest.id)) == 2
