"""The headless CLI: run, resume after a kill, export, list, exit codes."""
from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import main
from engine.core.errors import EXIT_ALL_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_STORE, EXIT_USAGE

ROOT = Path(__file__).resolve().parents[3]


def _cli(*args: str) -> int:
    return main(list(args))


def test_run_and_export(tmp_path, photo_folder, capsys):
    out = tmp_path / "out"
    rc = _cli("run", str(photo_folder), "--metric", "niqe", "--attack", "ifgsm:iters=2",
              "--defence", "jpeg,median-blur", "--out", str(out), "--device", "cpu", "--seed", "1", "-q")
    assert rc == EXIT_OK
    assert (out / "results.sqlite").exists()
    with open(out / "raw.csv") as f:
        assert len(list(csv.DictReader(f))) == 3 * 3
    rc = _cli("export", str(out), "--out", str(tmp_path / "again"))
    assert rc == EXIT_OK
    assert (tmp_path / "again" / "raw.csv").read_text() == (out / "raw.csv").read_text()


def test_usage_errors(tmp_path, photo_folder, capsys):
    assert _cli("run", str(tmp_path / "missing"), "--metric", "niqe", "--attack", "ifgsm",
                "--out", str(tmp_path / "o")) == EXIT_USAGE
    assert "no such file or folder" in capsys.readouterr().err
    assert _cli("run", str(photo_folder), "--metric", "no-such-metric", "--attack", "ifgsm",
                "--out", str(tmp_path / "o")) == EXIT_USAGE
    assert "unknown metric" in capsys.readouterr().err
    assert _cli("run", str(photo_folder), "--metric", "niqe", "--attack", "ifgsm:eps=7",
                "--out", str(tmp_path / "o")) == EXIT_USAGE
    assert "eps" in capsys.readouterr().err
    assert _cli("run", str(photo_folder), "--metric", "niqe", "--attack", "ifgsm", "--defence", "jpeg[q=11]",
                "--out", str(tmp_path / "o")) == EXIT_USAGE
    assert "preset" in capsys.readouterr().err
    # a missing store is exit code 4 (docs/failures.md), with the path in one line, not a crash (70)
    assert _cli("export", str(tmp_path / "nothing.sqlite"), "--out", str(tmp_path)) == EXIT_STORE
    err = capsys.readouterr().err
    assert "nothing.sqlite" in err and "no such store" in err and "Traceback" not in err


def test_exit_codes_for_failures(tmp_path, photo_folder):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"")
    assert _cli("run", str(bad), "--metric", "niqe", "--attack", "fgsm", "--out", str(tmp_path / "o1"),
                "--device", "cpu", "-q") == EXIT_ALL_FAILED
    (photo_folder / "z.png").write_bytes(b"")
    assert _cli("run", str(photo_folder), "--metric", "niqe", "--attack", "fgsm", "--defence", "",
                "--out", str(tmp_path / "o2"), "--device", "cpu", "-q") == EXIT_PARTIAL


def test_list_shows_components_and_status(capsys):
    assert _cli("list") == EXIT_OK
    out = capsys.readouterr().out
    for name in ("niqe", "brisque", "metaiqa", "linearity", "spaq", "ifgsm", "mifgsm", "amifgsm", "pgd",
                 "jpeg", "median-blur", "random-crop"):
        assert name in out
    niqe_line = next(l for l in out.splitlines() if l.startswith("niqe "))
    assert "[ready]" in niqe_line
    musiq = out.splitlines()[out.splitlines().index(next(l for l in out.splitlines() if l.startswith("musiq "))) + 1]
    assert "needs-download" in musiq and "https://" in musiq and ".pth" in musiq
    assert "eps=10/255" in out and "presets:" in out


def test_help_lists_contributed_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        _cli("--help")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "list", "export", "report", "train-fcn", "train-uap", "sma"):
        assert command in out


def _done_count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute("SELECT COUNT(*) FROM items WHERE status='done'").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates_or_gaps(tmp_path, photo_folder):
    from PIL import Image

    from tests.conftest import photo

    for n in ("rocket", "immunohistochemistry", "coffee"):
        Image.fromarray(photo(n, (160, 160))).save(photo_folder / f"{n}-2.png")
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "main.py"), "run", str(photo_folder), "--metric", "niqe",
           "--attack", "ifgsm:iters=4", "--defence", "jpeg", "--out", str(out), "--device", "cpu", "-q",
           "--no-export"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = out / "results.sqlite"
    deadline = time.time() + 240
    while time.time() < deadline and _done_count(db) < 2 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _done_count(db)
    assert 2 <= killed_at < 6, "the run should have been killed part-way"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{killed_at} reused from the store" in done.stderr
    with sqlite3.connect(db) as c:
        n_rows, n_distinct = c.execute("SELECT COUNT(*), COUNT(DISTINCT item_id || defence) FROM rows").fetchone()
        statuses = c.execute("SELECT status, COUNT(*) FROM items GROUP BY status").fetchall()
    from engine.run.identity import image_hash

    units = len({image_hash(str(f), 10**8) for f in photo_folder.glob("*.png")})  # identical pictures: one unit
    assert n_rows == n_distinct == units * 2
    assert statuses == [("done", units)]


def test_mos_file_in_folder_gives_correlations(tmp_path, photo_folder):
    (photo_folder / "mos.csv").write_text("image_name,mos\nastronaut.png,3.1\ncoffee.png,4.2\nchelsea.png,2.5\n")
    out = tmp_path / "out"
    assert _cli("run", str(photo_folder), "--metric", "niqe", "--attack", "fgsm", "--defence", "jpeg",
                "--out", str(out), "--device", "cpu", "-q") == EXIT_OK
    with open(out / "raw.csv") as f:
        raw = list(csv.DictReader(f))
    assert {r["image_name"]: float(r["mos"]) for r in raw}["coffee.png"] == 4.2
    with open(out / "correlations.csv") as f:
        corr = list(csv.DictReader(f))
    assert len(corr) == 2 and all(r["n"] == "3" for r in corr)
    assert all(-1.0 <= float(r["srocc_clear"]) <= 1.0 for r in corr)


@pytest.mark.parametrize("command", [["train-uap", "F", "--eps"], ["train-robust", "F", "--metric", "niqe", "--eps"],
                                     ["sma", "F", "--metric", "niqe", "--eps"]])
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "abc", "1/0"])
def test_every_fraction_option_refuses_what_is_not_a_finite_non_negative_number(command, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        _cli(*command, value)
    assert exit_.value.code == EXIT_USAGE
    assert f"not a non-negative number or fraction: {value!r}" in capsys.readouterr().err


def test_a_fraction_option_reads_4_over_255():
    from engine.cli.common import fraction

    assert fraction("4/255") == 4 / 255 and fraction("0.02") == 0.02 and fraction("0") == 0.0


def test_ctrl_c_during_a_training_closes_the_trainer_and_says_how_to_resume(capsys):
    """train-fcn and train-robust share the loop: the trainer's generator is closed (its
    saved state stays), and the exit code is 130."""
    from types import SimpleNamespace

    from engine.cli.common import drive_training
    from engine.core.errors import EXIT_INTERRUPTED

    closed = []

    def trainer():
        try:
            for epoch in (1, 2, 3):
                yield SimpleNamespace(epoch=epoch, best=epoch == 1)
            return "best.pt"
        finally:
            closed.append(True)

    def line(step):
        if step.epoch == 2:
            raise KeyboardInterrupt  # as if Ctrl+C arrived while printing
        return f"epoch {step.epoch}"

    assert drive_training(trainer(), line, str, "out.pt") == EXIT_INTERRUPTED
    out = capsys.readouterr()
    assert out.out == "epoch 1  * best\n" and closed == [True]
    assert "run the same command again to resume (out.pt)" in out.err
    assert drive_training(trainer(), lambda s: f"epoch {s.epoch}", lambda b: f"done {b}", "o") == EXIT_OK
    assert capsys.readouterr().out.splitlines()[-1] == "done best.pt"
