"""The one pre-run path: what :func:`check` finds is what the CLI refuses and what the
GUI's plan preview lists."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine.core.errors import EXIT_USAGE, EXIT_WEIGHTS
from engine.run.prepare import NotRunnable, check, prepare, without_problems
from engine.spec.experiment import Experiment
from engine.store.db import ResultStore
from tests.conftest import photo


@pytest.fixture
def image(tmp_path: Path) -> str:
    path = tmp_path / "a.png"
    Image.fromarray(photo("astronaut", (64, 64))).save(path)
    return str(path)


def _exp(image: str, **kw) -> Experiment:
    fields = {"metrics": ["niqe"], "attacks": ["fgsm"], "defences": ["jpeg"], "device": "cpu", **kw}
    return Experiment(images=[image], **fields)


def test_a_runnable_experiment_has_no_problems(image):
    assert check(_exp(image)) == []


def test_bad_names_values_and_missing_files_are_problems(image, tmp_path):
    exp = _exp(image, metrics=["niqe", "nqie"], attacks=["ifgsm[fien]", "uap:perturbation=" + str(tmp_path / "no.pt")],
               defences=["jpeg:q=500"])
    got = {(p.kind, p.label.split("[")[0].split("(")[0]): p for p in check(exp)}
    assert set(got) == {("metric", "nqie"), ("attack", "ifgsm"), ("attack", "uap"), ("defence", "jpeg")}
    assert "did you mean 'niqe'" in got[("metric", "nqie")].reason
    assert "unknown preset 'fien'" in got[("attack", "ifgsm")].reason
    assert "no.pt" in got[("attack", "uap")].reason and not got[("attack", "uap")].usage
    assert got[("defence", "jpeg")].usage and "500" in got[("defence", "jpeg")].reason
    assert without_problems(exp, list(got.values())) is None  # no attack is left


def test_missing_weights_are_a_weights_problem_unless_random_weights_are_asked_for(image):
    spaq = check(_exp(image, metrics=["spaq"]))
    assert [(p.kind, p.weights) for p in spaq] == [("metric", True)] and "needs-download" in spaq[0].reason
    assert check(_exp(image, metrics=["spaq:pretrained=0"])) == []
    with pytest.raises(NotRunnable) as info:
        prepare(_exp(image, metrics=["spaq"]), None)
    assert info.value.exit_code == EXIT_WEIGHTS
    with pytest.raises(NotRunnable) as info:
        prepare(_exp(image, metrics=["spaq", "nqie"]), None)
    assert info.value.exit_code == EXIT_USAGE


def test_prepare_plans_and_warns_about_disk_space(image, tmp_path, monkeypatch):
    import engine.store.diskspace as diskspace

    exp = _exp(image, save_images=True)
    with ResultStore(tmp_path / "r.sqlite") as store:
        ready = prepare(exp, store)
        assert (ready.items, ready.pending, ready.units) == (1, 1, 1) and ready.warnings == []
        monkeypatch.setattr(diskspace.shutil, "disk_usage", lambda p: type("U", (), {"free": 10})())
        ready = prepare(exp, store)
    assert ready.experiment is exp and len(ready.warnings) == 1 and "free" in ready.warnings[0]


def test_the_cli_refuses_exactly_the_problems_before_creating_anything(image, tmp_path, capsys):
    from engine.cli import main

    out = tmp_path / "out"
    code = main(["run", image, "--metric", "niqe", "--attack", f"uap:perturbation={tmp_path / 'no.pt'}",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and not out.exists()
    problem = check(_exp(image, attacks=[f"uap:perturbation={tmp_path / 'no.pt'}"]))[0]
    assert err.strip() == f"error: {problem.line}"
