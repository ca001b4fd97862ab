"""``list`` keeps its catalogue between runs and rebuilds it when what it depends on changes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine.cli.listing as listing
from engine.attacks._colorization import WEIGHTS_FILE
from engine.cli import main
from engine.cli.catalogue_cache import cache_file, code_key, folder_state
from engine.core.errors import EXIT_OK

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def counted_builds(monkeypatch, tmp_path):
    """A fresh cache folder and a counter of catalogue builds."""
    monkeypatch.setenv("IQA_LAB_CACHE", str(tmp_path / "cache"))
    calls = []
    real = listing.catalogue

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(listing, "catalogue", counting)
    return calls


def _list_json(capsys, *extra: str) -> dict:
    assert main(["list", "--json", *extra]) == EXIT_OK
    return json.loads(capsys.readouterr().out)


def _state(cat: dict, kind: str, name: str) -> str:
    return next(c["status"] for c in cat[kind] if c["name"] == name)


def test_second_list_reads_the_kept_catalogue_and_prints_the_same(counted_builds, capsys):
    first = _list_json(capsys)
    second = _list_json(capsys)
    assert len(counted_builds) == 1
    assert first == second
    assert cache_file().is_file()
    assert main(["list"]) == EXIT_OK
    text = capsys.readouterr().out
    assert len(counted_builds) == 1
    assert text == listing.describe_all(cat=json.loads(json.dumps(listing.catalogue(), default=str))) + "\n"


def test_refresh_rebuilds(counted_builds, capsys):
    _list_json(capsys)
    _list_json(capsys, "--refresh")
    assert len(counted_builds) == 2


def test_a_weights_file_put_in_place_changes_the_status(counted_builds, capsys, monkeypatch, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("IQA_LAB_WEIGHTS", str(weights))
    assert _state(_list_json(capsys), "attacks", "cadv") == "needs-download"
    assert _state(_list_json(capsys), "attacks", "cadv") == "needs-download"
    assert len(counted_builds) == 1
    (weights / WEIGHTS_FILE).write_bytes(b"x" * 16)
    os.utime(weights, ns=(1, 1))  # the folder's time differs from the kept one even on a coarse clock
    assert _state(_list_json(capsys), "attacks", "cadv") == "ready"
    assert len(counted_builds) == 2


def test_another_environment_is_another_catalogue(counted_builds, capsys, monkeypatch, tmp_path):
    _list_json(capsys)
    monkeypatch.setenv("IQA_LAB_WEIGHTS", str(tmp_path))
    _list_json(capsys)
    assert len(counted_builds) == 2


def test_a_damaged_or_unwritable_cache_is_rebuilt_without_an_error(counted_builds, capsys, monkeypatch, tmp_path):
    first = _list_json(capsys)
    cache_file().write_text("{not json")
    assert _list_json(capsys) == first
    assert len(counted_builds) == 2
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("IQA_LAB_CACHE", str(blocker / "sub"))  # a folder under a file: cannot be made
    assert _list_json(capsys) == first
    assert _list_json(capsys) == first
    assert len(counted_builds) == 4


def test_code_key_follows_the_code_files(tmp_path):
    (tmp_path / "pkg").mkdir()
    f = tmp_path / "pkg" / "a.py"
    f.write_text("x = 1\n")
    before = code_key(tmp_path)
    assert code_key(tmp_path) == before
    f.write_text("x = 22\n")
    assert code_key(tmp_path) != before


def test_folder_state_sees_files_added_inside_a_hub_cache(tmp_path):
    snap = tmp_path / "models--org--net" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (tmp_path / "models--org--net" / "refs").mkdir()
    (tmp_path / "models--org--net" / "refs" / "main").write_text("abc")
    before = folder_state(tmp_path)
    (snap / "config.json").write_text("{}")
    os.utime(snap, ns=(1, 1))
    assert folder_state(tmp_path) != before
    assert folder_state(tmp_path / "missing") == [-1]


def test_with_a_plugin_loaded_the_catalogue_is_live_and_not_kept(counted_builds, capsys, tmp_path):
    from engine.plugins import isolated

    plugin = tmp_path / "my_defence.py"
    plugin.write_text(
        "from engine.api import DEFENCES, Defence\n\n"
        "@DEFENCES.register('cache-test-defence')\n"
        "class CacheTestDefence(Defence):\n"
        "    '''Returns the image.'''\n"
        "    def forward(self, x, generator):\n"
        "        return x\n")
    with isolated():
        cat = _list_json(capsys, "--plugin", str(plugin))
        assert any(c["name"] == "cache-test-defence" for c in cat["defences"])
        _list_json(capsys)
    assert len(counted_builds) == 2
    assert not cache_file().exists()


def test_a_kept_catalogue_lists_without_importing_torch(tmp_path):
    env = {**os.environ, "IQA_LAB_CACHE": str(tmp_path), "PYTHONPATH": str(ROOT)}
    probe = ("import sys; from engine.cli import main; rc = main(['list']); "
             "print('TORCH', 'torch' in sys.modules, rc, file=sys.stderr)")
    runs = [subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300) for _ in range(2)]
    assert [r.stderr.strip().splitlines()[-1] for r in runs] == ["TORCH True 0", "TORCH False 0"]
    assert runs[0].stdout == runs[1].stdout
    assert "niqe" in runs[1].stdout


def test_a_folder_made_beside_main_py_keeps_the_catalogue(monkeypatch):
    """A run's output folder next to main.py changes the lab folder's time, not the catalogue."""
    from engine.cli.catalogue_cache import environment_key

    lab = str(ROOT)
    monkeypatch.setattr(sys, "path", [lab, *[p for p in sys.path if p != lab]])
    before = environment_key()
    os.utime(ROOT, ns=(1, 1))
    try:
        assert environment_key() == before
    finally:
        os.utime(ROOT)
