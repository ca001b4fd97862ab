"""A defence added later reuses the stored attack when an exact float copy of x_a is kept.

A run with ``keep_attacked`` keeps each attacked image beside the store; a later run of the
same grid with one more defence computes only that defence's rows, from the copy, without
running the attack, and its rows equal those of a fresh run of the whole grid. Without a
copy, or with a damaged one, the attack is computed again and the run says why.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.attacks.ifgsm import IFGSM
from engine.evaluation.protocol import to_8bit_grid
from engine.core.events import AttackStep, ItemFinished, RunStarted
from engine.run.driver import run_experiment
from engine.run.replay import NO_COPY
from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from engine.store.attacked import copy_paths
from engine.store.db import ResultStore
from tests.conftest import photo

SIZE = (96, 96)
ATTACK = "ifgsm:iters=2"
TIMING = {"attack_time", "defence_time"}
FIRST, GROWN = ["jpeg"], ["jpeg", "median-blur"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    for n in ("astronaut", "coffee"):
        Image.fromarray(photo(n, SIZE)).save(d / f"{n}.png")
    return d


@pytest.fixture
def attack_calls(monkeypatch) -> list[int]:
    """Counts every run of the attack itself (IFGSM.run), wherever the run calls it."""
    calls: list[int] = []
    original = IFGSM.run

    def counted(self, x, *args, **kwargs):
        calls.append(int(x.shape[0]))
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(IFGSM, "run", counted)
    return calls


def _exp(folder: Path, defences: list[str], **kw) -> Experiment:
    return Experiment(images=find_images(folder), root=str(folder), metrics=["niqe"], attacks=[ATTACK],
                      defences=defences, seed=3, device="cpu", **kw)


def _run(exp: Experiment, store: ResultStore) -> tuple[RunStarted, list]:
    events = list(run_experiment(exp, store))
    return next(e for e in events if isinstance(e, RunStarted)), events


def _rows(store: ResultStore, exp: Experiment) -> dict[tuple[str, str], dict]:
    return {(r["image_name"], r["defence_label"]): {k: v for k, v in r.items() if k not in TIMING}
            for r in store.rows(exp.id)}


@pytest.fixture
def fresh(folder: Path, tmp_path: Path) -> tuple[ResultStore, Experiment]:
    """The grown grid computed from scratch in a store of its own (attack and all)."""
    exp = _exp(folder, GROWN)
    store = ResultStore(tmp_path / "fresh" / "results.sqlite")
    _run(exp, store)
    return store, exp


def _kept(folder: Path, tmp_path: Path) -> ResultStore:
    """A store holding the first grid ({jpeg}) with exact float copies of x_a."""
    store = ResultStore(tmp_path / "kept" / "results.sqlite")
    _run(_exp(folder, FIRST, keep_attacked=True), store)
    return store


@pytest.mark.parametrize("protocol", ["lab", "msu"])
def test_a_defence_added_later_replays_the_stored_attack_and_equals_a_full_recompute(
        folder, tmp_path, attack_calls, protocol):
    """Under ``msu`` the copy is x_a as defended there: rounded to 8 bits."""
    fresh_exp = _exp(folder, GROWN, protocol=protocol)
    fresh_store = ResultStore(tmp_path / "fresh" / "results.sqlite")
    _run(fresh_exp, fresh_store)
    store = ResultStore(tmp_path / "kept" / "results.sqlite")
    attack_calls.clear()
    _run(_exp(folder, FIRST, keep_attacked=True, protocol=protocol), store)
    copies = sorted((tmp_path / "kept" / "attacked").glob("*.npy"))
    assert len(copies) == 2 and len(attack_calls) == 2
    if protocol == "msu":  # the copy is x_a as it was defended: on the 8-bit grid
        kept = torch.from_numpy(np.load(copies[0]))
        assert torch.equal(to_8bit_grid(kept), kept)
    attack_calls.clear()
    grown = _exp(folder, GROWN, protocol=protocol)  # keep_attacked is not needed to reuse copies kept before
    started, events = _run(grown, store)
    assert attack_calls == []  # the attack did not run
    assert not any(isinstance(e, AttackStep) for e in events)
    assert (started.pending, started.attacks_reused) == (2, 2)
    assert any("2 attack(s) reused from stored attacked images" in n for n in started.notes)
    assert not any("computed again" in n for n in started.notes)
    done = [e for e in events if isinstance(e, ItemFinished)]
    assert sorted(r["defence_label"] for e in done for r in e.rows) == ["median-blur", "median-blur"]
    identity = store.manifest(grown.id)["runs"][-1]["identity"]
    assert identity["attacks_reused_from_stored"] == 2 and identity["attacks_recomputed_for_new_defences"] == 0
    assert _rows(store, grown) == _rows(fresh_store, fresh_exp)  # every column but the timings, bit for bit
    # the unit's attack record (steps, scores) is the stored one, as a full recompute writes it
    assert ([(i["image_name"], i["steps"], i["clean_score"], i["attacked_score"]) for i in store.items(grown.id)]
            == [(i["image_name"], i["steps"], i["clean_score"], i["attacked_score"])
                for i in fresh_store.items(fresh_exp.id)])


def test_replayed_rows_are_the_same_in_a_batch(folder, tmp_path, fresh, attack_calls):
    _kept(folder, tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "kept", copy)  # the store and its copies, moved together
    store = ResultStore(copy / "results.sqlite")
    attack_calls.clear()
    grown = _exp(folder, GROWN, batch_size=2)
    started, _ = _run(grown, store)
    assert attack_calls == [] and any("2 attack(s) reused" in n for n in started.notes)
    fresh_store, fresh_exp = fresh
    assert _rows(store, grown) == _rows(fresh_store, fresh_exp)


def test_without_kept_copies_the_attack_is_computed_again_and_the_run_says_why(folder, tmp_path, fresh,
                                                                               attack_calls):
    store = ResultStore(tmp_path / "plain" / "results.sqlite")
    _run(_exp(folder, FIRST), store)
    assert not (tmp_path / "plain" / "attacked").exists()
    attack_calls.clear()
    grown = _exp(folder, GROWN)
    started, _ = _run(grown, store)
    assert sum(attack_calls) == 2  # each image attacked again
    assert any(n.startswith("2 stored attack(s) computed again for new defences") and "--keep-attacked" in n
               for n in started.notes)
    identity = store.manifest(grown.id)["runs"][-1]["identity"]
    assert identity["attacks_reused_from_stored"] == 0
    assert identity["attacks_recomputed_for_new_defences"] == 2
    assert identity["attacks_recomputed_why"] == {NO_COPY: 2}
    fresh_store, fresh_exp = fresh
    assert _rows(store, grown) == _rows(fresh_store, fresh_exp)


def _unit_of(store: ResultStore, name: str) -> str:
    exp_id = store.latest_experiment_id()
    return next(i["item_id"] for i in store.items(exp_id) if i["image_name"] == name)


def test_a_damaged_copy_is_not_used_the_attack_runs_again_and_the_run_says_why(folder, tmp_path, fresh,
                                                                               attack_calls):
    store = _kept(folder, tmp_path)
    npy, _ = copy_paths(store.attacked_dir, _unit_of(store, "coffee.png"))
    data = bytearray(npy.read_bytes())
    data[-5] ^= 0x40  # one flipped bit in the pixels: same size, wrong checksum
    npy.write_bytes(bytes(data))
    attack_calls.clear()
    grown = _exp(folder, GROWN)
    started, _ = _run(grown, store)
    assert attack_calls == [1]  # only the damaged unit is attacked again
    assert any("1 attack(s) reused from stored attacked images" in n for n in started.notes)
    assert any(n.startswith("1 stored attack(s) computed again") and "checksum mismatch" in n and npy.name in n
               for n in started.notes)
    fresh_store, fresh_exp = fresh
    assert _rows(store, grown) == _rows(fresh_store, fresh_exp)


@pytest.mark.parametrize("damage, said", [
    (lambda npy, rec: npy.write_bytes(npy.read_bytes()[:-8]), "damaged"),
    (lambda npy, rec: rec.write_text("{not json"), "unreadable"),
    (lambda npy, rec: npy.unlink(), "no exact float copy"),
])
def test_every_kind_of_damage_is_a_reason_never_a_crash(folder, tmp_path, damage, said):
    store = _kept(folder, tmp_path)
    npy, record = copy_paths(store.attacked_dir, _unit_of(store, "astronaut.png"))
    damage(npy, record)
    from engine.run.prepare import plan_counts

    counts = plan_counts(_exp(folder, GROWN), store.path)  # the preview says it before the run
    assert counts["attacks_reused_from_stored"] == 1 and counts["attacks_recomputed_for_new_defences"] == 1
    assert any("computed again" in n and said in n for n in counts["notes"])


def test_a_copy_of_other_rows_is_refused(folder, tmp_path):
    """A copy whose recorded M(x_a) is not the stored rows' (e.g. written by a run killed
    before it committed, when another run then stored the unit) is not used."""
    import json

    store = _kept(folder, tmp_path)
    _, record = copy_paths(store.attacked_dir, _unit_of(store, "coffee.png"))
    meta = json.loads(record.read_text())
    meta["attacked"] += 1e-9
    record.write_text(json.dumps(meta))
    started, _ = _run(_exp(folder, GROWN), store)
    assert any("1 stored attack(s) computed again" in n and "M(x_a) differs" in n for n in started.notes)


def test_a_copy_damaged_after_the_plan_falls_back_to_the_attack_with_a_note(folder, tmp_path, attack_calls):
    """The copy is checked again where the item runs (a remote worker gets its bytes from
    the driver): a damaged one is dropped there, the attack runs, the item's note says why."""
    from engine.run.compute import run_unit
    from engine.run.identity import reuse_plan
    from engine.run.runtime import Runtime
    from engine.run.units import ItemOutcome

    store = _kept(folder, tmp_path)
    grown = _exp(folder, GROWN)
    pending = reuse_plan(grown, store, verify=True).pending
    assert all(it.replay is not None for it in pending)
    bad = pending[0]
    data = bytearray(Path(bad.replay.path).read_bytes())
    data[-1] ^= 1
    attack_calls.clear()
    outs = [o for o in run_unit(pending, grown, Runtime("cpu"), image_data={bad.replay.path: bytes(data)})
            if isinstance(o, ItemOutcome)]
    assert attack_calls == [1]
    by_id = {o.item.id: o for o in outs}
    assert all(o.ok for o in outs)
    assert "stored attacked image not used" in by_id[bad.id].result.note
    assert "checksum mismatch" in by_id[bad.id].result.note
    assert "not used" not in by_id[pending[1].id].result.note


def test_the_cli_keeps_copies_and_says_how_many_attacks_it_reused(folder, tmp_path, capsys, attack_calls):
    from engine.cli import main

    out = tmp_path / "out"
    base = ["run", str(folder), "--metric", "niqe", "--attack", ATTACK, "--seed", "3", "--out", str(out), "-q"]
    assert main([*base, "--defence", "jpeg", "--keep-attacked"]) == 0
    copies = sorted((out / "attacked").glob("*.npy"))
    assert len(copies) == 2 and all(p.stat().st_size == 3 * SIZE[0] * SIZE[1] * 4 + 128 for p in copies)
    capsys.readouterr()
    attack_calls.clear()
    assert main([*base, "--defence", "jpeg,median-blur"]) == 0
    err = capsys.readouterr().err
    assert attack_calls == []
    assert "note: 2 attack(s) reused from stored attacked images" in err
    store = ResultStore(out / "results.sqlite", readonly=True)
    first, second = store.experiments()
    assert first["spec"]["keep_attacked"] is True and second["spec"]["keep_attacked"] is False
    assert first["manifest"]["identity"]["keep_attacked"] is True


def test_a_full_disk_keeps_the_committed_items_copies_and_no_copy_without_rows(folder, tmp_path, monkeypatch):
    import errno

    from engine.core.errors import DiskFullError

    original = ResultStore.write_item
    calls: list[int] = []

    def full_on_second(self, *a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, *a, **kw)

    monkeypatch.setattr(ResultStore, "write_item", full_on_second)
    store = ResultStore(tmp_path / "k" / "results.sqlite")
    exp = _exp(folder, FIRST, keep_attacked=True)
    with pytest.raises(DiskFullError):
        list(run_experiment(exp, store))
    done = store.done_item_ids(exp.id)
    assert len(done) == 1
    kept = {p.stem for p in store.attacked_dir.iterdir()}
    assert kept == done  # the item not committed left no copy (nor a temporary file)
    monkeypatch.setattr(ResultStore, "write_item", original)
    list(run_experiment(exp, store))  # resume
    assert {p.stem for p in store.attacked_dir.glob("*.npy")} == store.done_item_ids(exp.id)
    assert len(list(store.attacked_dir.iterdir())) == 4
