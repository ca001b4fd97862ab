"""``new-plugin`` writes a file that loads as it is, whose own test passes, and whose
component runs in an experiment."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.core.errors import EXIT_OK, EXIT_USAGE
from engine.plugins import PluginError, load_path
from engine.plugins.template import identifier, render

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("kind", ["metric", "attack", "defence"])
def test_the_written_file_loads_and_its_own_test_passes(tmp_path, kind, capsys):
    out = tmp_path / f"my_{kind}.py"
    assert main(["new-plugin", kind, f"my-{kind}", "--out", str(out)]) == EXIT_OK
    assert f"python -m pytest {out}" in capsys.readouterr().err
    [rec] = load_path(out)
    assert rec.components == [(kind, f"my-{kind}")]
    module = sys.modules[rec.module]
    getattr(module, f"test_{identifier(f'my-{kind}')}")()  # the file's own test, on the loaded code
    text = out.read_text()
    assert text.count("#") >= 3 and "docs/plugins.md" in text  # commented, pointing at the walk-through


def test_the_users_own_command_runs_the_test(tmp_path):
    """What the file tells the user to run: ``python -m pytest FILE``, from the project."""
    out = tmp_path / "sharp.py"
    assert main(["new-plugin", "metric", "sharp", "--out", str(out)]) == EXIT_OK
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


def test_the_template_components_run_together(tmp_path, small_photos):
    for kind in ("metric", "attack", "defence"):
        main(["new-plugin", kind, f"t-{kind}", "--out", str(tmp_path / f"t_{kind}.py")])
    out = tmp_path / "out"
    rc = main(["run", str(small_photos), "--plugin", str(tmp_path), "--metric", "t-metric",
               "--attack", "t-attack:iters=2", "--defence", "t-defence[light]", "--out", str(out),
               "--device", "cpu", "-q"])
    assert rc == EXIT_OK
    rows = (out / "raw.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 and "light" in rows[1] + rows[2] + rows[3]


def test_new_plugin_refuses_a_bad_name_an_existing_file_and_a_non_python_out(tmp_path, capsys):
    assert main(["new-plugin", "metric", "Bad Name", "--out", str(tmp_path / "x.py")]) == EXIT_USAGE
    assert "lower-case letters" in capsys.readouterr().err
    (tmp_path / "x.py").write_text("mine")
    assert main(["new-plugin", "metric", "ok", "--out", str(tmp_path / "x.py")]) == EXIT_USAGE
    assert (tmp_path / "x.py").read_text() == "mine"
    assert main(["new-plugin", "metric", "ok", "--out", str(tmp_path / "x.txt")]) == EXIT_USAGE
    with pytest.raises(PluginError):
        render("filter", "ok", "x.py")
