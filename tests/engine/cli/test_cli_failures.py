"""Every failure path of the CLI ends in one clear line and a documented exit code."""
from __future__ import annotations

import csv
import errno
import shutil
import sqlite3

import pytest

from engine.cli import main
from engine.core.errors import (EXIT_ALL_FAILED, EXIT_CODES, EXIT_DISK_FULL, EXIT_INTERNAL, EXIT_OK, EXIT_STORE,
                           EXIT_USAGE, EXIT_WEIGHTS, DiskFullError, describe, needs_action)
from engine.store.check import check_store
from tests.engine._disk import SmallDisk, try_mount, unmount
from tests.engine._stores import damage_page, fill_store

FAST = ["--metric", "niqe", "--attack", "ifgsm:iters=2", "--device", "cpu", "-q"]


def _cli(*args: str) -> int:
    return main([str(a) for a in args])


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_help_documents_every_exit_code(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code, text in EXIT_CODES.items():
        assert f"{code:>3}  {text}" in out
    assert len(set(EXIT_CODES)) == len(EXIT_CODES) and EXIT_DISK_FULL not in (0, 1)


def test_out_that_is_a_file_is_bad_usage(tmp_path, photo_folder, capsys):
    f = tmp_path / "taken"
    f.write_text("mine")
    assert _cli("run", photo_folder, *FAST, "--out", f) == EXIT_USAGE
    assert "exists and is a file" in _error_line(capsys) and f.read_text() == "mine"


def test_near_misses_suggest_the_name(tmp_path, photo_folder, capsys):
    for flag, wrong, right in (("--metric", "niqee", "niqe"), ("--attack", "ifgsmm", "ifgsm"),
                               ("--defence", "jpegg", "jpeg")):
        args = {"--metric": "niqe", "--attack": "ifgsm", "--defence": "jpeg", flag: wrong}
        argv = [a for k, v in args.items() for a in (k, v)]
        assert _cli("run", photo_folder, *argv, "--out", tmp_path / "o") == EXIT_USAGE
        line = _error_line(capsys)
        assert f"did you mean '{right}'" in line and "known:" in line
    assert _cli("run", photo_folder, "--metric", "niqe", "--attack", "ifgsm[fien]", "--out", tmp_path / "o") == 2
    line = _error_line(capsys)
    assert line.startswith("error: ifgsm: unknown preset 'fien'") and "did you mean 'fine'" in line
    assert not (tmp_path / "o").exists()


def test_skipped_entries_are_reported_once(tmp_path, photo_folder, capsys):
    (photo_folder / "x.jpg").mkdir()
    (photo_folder / ".hidden.png").write_bytes(b"")
    (photo_folder / ".cache").mkdir()
    (photo_folder / ".cache" / "thumb.png").write_bytes(b"")
    _cli("run", photo_folder, "--metric", "niqee", "--attack", "ifgsm", "--out", tmp_path / "o")
    notes = [ln for ln in capsys.readouterr().err.splitlines() if "skipped" in ln]
    assert len(notes) == 1
    assert "skipped 3 entries" in notes[0] and "2 hidden" in notes[0] and "1 folders named like an image" in notes[0]


def test_max_pixels_option(tmp_path, photo_folder, capsys):
    out = tmp_path / "o"
    assert _cli("run", photo_folder, *FAST, "--max-pixels", "10000", "--out", out) == EXIT_ALL_FAILED
    with open(out / "raw.csv") as f:
        errors = [r["error"] for r in csv.DictReader(f)]
    assert len(errors) == 3 and all("too large" in e and "--max-pixels" in e for e in errors)
    with pytest.raises(SystemExit) as exit_:  # argparse's own usage error
        _cli("run", photo_folder, *FAST, "--max-pixels", "lots", "--out", out)
    assert exit_.value.code == EXIT_USAGE and "not a pixel count" in capsys.readouterr().err


@pytest.fixture
def damaged_store(tmp_path):
    folder = tmp_path / "damaged"
    folder.mkdir()
    fill_store(folder / "results.sqlite")
    damage_page(folder / "results.sqlite")
    return folder


def test_damaged_store_fails_clearly_everywhere(tmp_path, photo_folder, damaged_store, capsys):
    db = damaged_store / "results.sqlite"
    before = db.read_bytes()
    assert _cli("export", damaged_store, "--out", tmp_path / "csv") == EXIT_STORE
    assert "check" in _error_line(capsys)
    assert _cli("report", damaged_store, "--out", tmp_path / "report") == EXIT_STORE
    assert "damaged" in _error_line(capsys)
    assert not (tmp_path / "report").exists()  # report makes its folder only when it can report
    assert _cli("run", photo_folder, *FAST, "--out", damaged_store) == EXIT_STORE
    line = _error_line(capsys)
    assert str(db) in line and "--salvage" in line and "nothing was written" in line
    assert db.read_bytes() == before
    assert _cli("check", tmp_path / "nowhere.sqlite") == EXIT_STORE
    assert "no such store" in _error_line(capsys)
    assert _cli("check", damaged_store) == EXIT_STORE
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "rows:" in out and "readable" in out
    assert _cli("check", damaged_store, "--salvage", tmp_path / "new.sqlite") == EXIT_OK
    assert check_store(tmp_path / "new.sqlite").ok


@pytest.mark.parametrize("damage", ["garbage header", "truncated"])
def test_unreadable_store_in_run_is_exit_4(tmp_path, photo_folder, capsys, damage):
    out = tmp_path / "o"
    out.mkdir()
    db = out / "results.sqlite"
    fill_store(db)
    data = db.read_bytes()
    db.write_bytes(b"garbage!" * 16 + data[128:] if damage == "garbage header" else data[:5000])
    assert _cli("run", photo_folder, *FAST, "--out", out) == EXIT_STORE
    assert str(db) in _error_line(capsys)


def test_report_without_store_creates_nothing(tmp_path, capsys):
    assert _cli("report", tmp_path / "none", "--out", tmp_path / "rep") == EXIT_STORE
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    assert _cli("report", empty, "--out", tmp_path / "rep") == EXIT_STORE
    assert not (tmp_path / "rep").exists()


def test_unexpected_error_names_a_saved_traceback(tmp_path, monkeypatch, capsys):
    import engine.cli.listing

    monkeypatch.setenv("IQA_LAB_CRASH_DIR", str(tmp_path / "crashes"))

    def broken(**kw):
        raise ZeroDivisionError("deep inside")

    monkeypatch.setattr(engine.cli.listing, "describe_all", broken)
    assert _cli("list") == EXIT_INTERNAL
    line = _error_line(capsys)
    assert "internal error: ZeroDivisionError: deep inside" in line
    saved = list((tmp_path / "crashes").iterdir())
    assert len(saved) == 1 and str(saved[0]) in line
    assert "Traceback" in saved[0].read_text() and "broken" in saved[0].read_text()


def test_describe_maps_expected_failures():
    from engine.run.backends import BackendError
    from engine.metrics.weights import WeightsUnavailable

    msg, code = describe(PermissionError(errno.EACCES, "Permission denied", "/data/out"))
    assert code == EXIT_USAGE and "/data/out" in msg and "permission" in msg
    assert describe(BackendError("cannot reach ray://head:10001; is the cluster up?"))[1] == EXIT_USAGE
    msg, code = describe(WeightsUnavailable("x.mat", "https://example.org/x.mat", "/w", metric="niqe"))
    assert code == EXIT_WEIGHTS and "x.mat" in msg and "/w" in msg
    msg, code = describe(OSError(errno.ENOSPC, "No space left on device", "/d/raw.csv"))
    assert code == EXIT_DISK_FULL and "/d/raw.csv" in msg
    assert describe(sqlite3.OperationalError("database or disk is full"))[1] == EXIT_DISK_FULL
    assert "about 2.0 MB" in str(DiskFullError("/x", needed=2 * 1024 * 1024, done="3 of 9 items"))
    assert describe(KeyboardInterrupt())[1] == 130
    assert needs_action(EXIT_DISK_FULL) and not needs_action(EXIT_OK)


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    mount = tmp_path / "disk"
    if try_mount(mount, "3m"):
        yield SmallDisk(mount, True, monkeypatch)
        unmount(mount)
    else:  # no tmpfs (not root): a size-limited simulation of the image writes
        mount.mkdir(exist_ok=True)
        yield SmallDisk(mount, False, monkeypatch)


def test_full_disk_stops_after_the_last_committed_item(tmp_path, photo_folder, small_disk, monkeypatch, capsys):
    from engine.store.db import ResultStore

    (photo_folder / "chelsea.png").unlink()  # two items: one fits, one does not

    original = ResultStore.write_item
    calls = []

    def write_then_fill(self, *a, **kw):
        original(self, *a, **kw)
        calls.append(1)
        if len(calls) == 1:
            small_disk.fill(leave=120_000)  # the next item's PNGs do not fit; the CSVs do

    monkeypatch.setattr(ResultStore, "write_item", write_then_fill)
    out = small_disk.root / "out"
    argv = ["run", photo_folder, *FAST, "--defence", "jpeg", "--save-images", "--out", out]
    assert _cli(*argv) == EXIT_DISK_FULL
    line = _error_line(capsys)
    assert "disk full" in line and "1 of 2 items are saved" in line and "the rest needs about" in line
    assert not list(out.rglob("*.tmp")), "no half-written files"
    report = check_store(out / "results.sqlite")
    assert report.ok and report.readable["items"] == 1
    with open(out / "raw.csv") as f:  # the CSVs of what is done
        assert len(list(csv.DictReader(f))) == 2
    small_disk.free_up()
    monkeypatch.setattr(ResultStore, "write_item", original)
    assert _cli(*argv) == EXIT_OK
    assert "2 items, 1 reused from the store" in capsys.readouterr().err
    with open(out / "raw.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    if small_disk.real:
        shutil.rmtree(out)


def test_free_space_is_checked_before_saving_images(tmp_path, photo_folder, monkeypatch, capsys):
    import engine.store.diskspace

    real = shutil.disk_usage

    def tiny(path):
        return real(path)._replace(free=100_000)

    monkeypatch.setattr(engine.store.diskspace.shutil, "disk_usage", tiny)
    out = tmp_path / "o"
    assert _cli("run", photo_folder, "--metric", "niqee", "--attack", "ifgsm", "--out", out) == EXIT_USAGE
    capsys.readouterr()
    from engine.store.diskspace import space_warning
    from engine.spec.experiment import Experiment
    from engine.spec.folders import find_images
    from engine.store.db import ResultStore

    exp = Experiment(images=find_images(photo_folder), root=str(photo_folder), metrics=["niqe"],
                     attacks=["ifgsm"], defences=["jpeg"], save_images=True)
    with ResultStore(out / "results.sqlite") as store:
        warning = space_warning(exp, store)
        assert warning and "97.7 KB is free" in warning and "--save-images" in warning
        exp.save_images = False
        assert space_warning(exp, store) is None  # rows alone fit
