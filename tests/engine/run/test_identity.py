"""Units of work are identified by what they compute (engine.spec.identity, engine.run.identity).

A grown grid computes only the new units and says how many it reused; a changed image is
new work; a removed image leaves the others usable; a link is an image of its own, named
after the link; a store made before content identity is read as it was, never mixed.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from engine.core.events import ItemFailed, ItemFinished, RunStarted
from engine.run.driver import run_experiment
from engine.run.identity import content_items, image_hash, reuse_plan
from engine.run.prepare import plan_counts
from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from engine.store.db import ResultStore
from tests.conftest import photo

SIZE = (96, 96)
ATTACK = "ifgsm:iters=1"


def _folder(tmp_path: Path, names=("astronaut", "coffee"), sub="photos") -> Path:
    folder = tmp_path / sub
    folder.mkdir()
    for n in names:
        Image.fromarray(photo(n, SIZE)).save(folder / f"{n}.png")
    return folder


def _exp(folder: Path, **kw) -> Experiment:
    args = dict(images=find_images(folder), root=str(folder), metrics=["niqe"], attacks=[ATTACK],
                defences=["jpeg:q=50"], seed=0, device="cpu")
    args.update(kw)
    return Experiment(**args)


def _run(exp: Experiment, store: ResultStore) -> tuple[RunStarted, list]:
    events = list(run_experiment(exp, store))
    started = next(e for e in events if isinstance(e, RunStarted))
    return started, events


def _by_name(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["image_name"], r["defence_label"]): r for r in rows}


def test_a_resaved_identical_png_is_the_same_image_and_a_changed_one_is_not(tmp_path):
    a = tmp_path / "a.png"
    Image.fromarray(photo("astronaut", SIZE)).save(a, compress_level=1)
    b = tmp_path / "b.png"
    Image.fromarray(photo("astronaut", SIZE)).save(b, compress_level=9)
    c = tmp_path / "c.png"
    Image.fromarray(photo("coffee", SIZE)).save(c)
    assert a.read_bytes() != b.read_bytes()
    assert image_hash(str(a), 10**8) == image_hash(str(b), 10**8) != image_hash(str(c), 10**8)


def test_a_grown_grid_computes_only_the_new_units_and_says_how_many_were_reused(tmp_path):
    folder = _folder(tmp_path)
    store = ResultStore(tmp_path / "r.sqlite")
    small = _exp(folder)
    started, _ = _run(small, store)
    assert (started.reused, started.pending) == (0, 2)
    first_rows = _by_name(store.rows(small.id))

    Image.fromarray(photo("chelsea", SIZE)).save(folder / "chelsea.png")
    grown = _exp(folder, attacks=[ATTACK, "fgsm"])  # one more image and one more attack
    started, events = _run(grown, store)
    assert (started.total, started.reused, started.pending) == (6, 2, 4)
    computed = {(e.item.image_name, e.item.attack.name) for e in events if isinstance(e, ItemFinished)}
    assert ("astronaut.png", "ifgsm") not in computed and len(computed) == 4
    assert len(store.rows(grown.id)) == 3 * 2 * 2  # 3 images × 2 attacks × (none, jpeg)
    for key, row in first_rows.items():  # the reused rows are the stored ones
        assert [r for r in store.rows(grown.id) if (r["image_name"], r["defence_label"]) == key
                and r["attack"] == "ifgsm"] == [row]
    manifest = store.manifest(grown.id)["runs"][-1]["identity"]
    assert manifest["reused"] == 2 and manifest["to_compute"] == 4 and manifest["items"] == 6
    # the first experiment still reads its own rows
    assert _by_name(store.rows(small.id)) == first_rows


def test_a_defence_added_later_computes_only_its_rows_and_says_why_the_attack_ran_again(tmp_path):
    folder = _folder(tmp_path, ("astronaut",))
    store = ResultStore(tmp_path / "r.sqlite")
    before = _exp(folder)
    _run(before, store)
    old = _by_name(store.rows(before.id))
    more = _exp(folder, defences=["jpeg:q=50", "median-blur"])
    started, events = _run(more, store)
    assert (started.reused, started.pending) == (0, 1)
    assert any("computed again for new defences" in n for n in started.notes)
    done = [e for e in events if isinstance(e, ItemFinished)]
    assert [r["defence_label"] for r in done[0].rows] == ["median-blur"]  # only the new defence's row
    rows = _by_name(store.rows(more.id))
    assert set(rows) == {("astronaut.png", "none"), ("astronaut.png", "jpeg(q=50)"),
                         ("astronaut.png", "median-blur")}
    for key, row in old.items():
        assert rows[key] == row  # stored rows kept as they were
    # the recomputed attack is the stored one: the new row's attacked score is the none row's
    assert rows[("astronaut.png", "median-blur")]["attacked"] == pytest.approx(
        rows[("astronaut.png", "none")]["attacked"], rel=1e-6)
    again, _ = _run(more, store)
    assert (again.reused, again.pending) == (1, 0)


def test_a_changed_image_is_new_work_and_its_old_rows_are_not_shown(tmp_path):
    folder = _folder(tmp_path)
    store = ResultStore(tmp_path / "r.sqlite")
    exp = _exp(folder)
    _run(exp, store)
    old = _by_name(store.rows(exp.id))
    Image.fromarray(photo("chelsea", SIZE)).save(folder / "coffee.png")  # another picture, same name
    started, _ = _run(exp, store)
    assert (started.reused, started.pending) == (1, 1)
    rows = _by_name(store.rows(exp.id))
    assert len(rows) == 4
    assert rows[("coffee.png", "none")]["clear"] != old[("coffee.png", "none")]["clear"]
    assert rows[("coffee.png", "none")]["image_hash"] == image_hash(str(folder / "coffee.png"), 10**8)
    assert rows[("astronaut.png", "none")] == old[("astronaut.png", "none")]


def test_a_removed_image_leaves_the_others_rows_usable(tmp_path):
    folder = _folder(tmp_path, ("astronaut", "coffee", "chelsea"))
    store = ResultStore(tmp_path / "r.sqlite")
    _run(_exp(folder), store)
    (folder / "coffee.png").unlink()
    fewer = _exp(folder)
    started, _ = _run(fewer, store)
    assert (started.total, started.reused, started.pending) == (2, 2, 0)
    assert {r["image_name"] for r in store.rows(fewer.id)} == {"astronaut.png", "chelsea.png"}


def test_a_link_is_an_image_of_its_own_computed_once_and_broken_links_fail_under_their_name(tmp_path):
    folder = _folder(tmp_path, ("astronaut",))
    os.symlink("astronaut.png", folder / "alias.png")
    os.symlink("nothing-here.png", folder / "broken.png")
    os.symlink("loop.png", folder / "loop.png")
    exp = _exp(folder)
    assert [exp.image_name(p) for p in exp.images] == ["alias.png", "astronaut.png", "broken.png", "loop.png"]
    store = ResultStore(tmp_path / "r.sqlite")
    started, events = _run(exp, store)
    assert started.pending == 3  # the link and its target are one unit
    rows = _by_name(store.rows(exp.id))
    assert {n for n, _ in rows} == {"alias.png", "astronaut.png"}
    for d in ("none", "jpeg(q=50)"):
        alias, target = dict(rows[("alias.png", d)]), dict(rows[("astronaut.png", d)])
        assert alias.pop("image_name") == "alias.png" and target.pop("image_name") == "astronaut.png"
        assert alias == target
    failed = {e.item.image_name: e.error for e in events if isinstance(e, ItemFailed)}
    assert set(failed) == {"broken.png", "loop.png"}
    items = {it["image_name"]: it for it in store.items(exp.id)}
    assert items["broken.png"]["status"] == "failed" and "broken" in items["broken.png"]["error"]


def test_the_plan_preview_counts_what_is_reused_without_writing(tmp_path):
    folder = _folder(tmp_path)
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        _run(_exp(folder), store)
    Image.fromarray(photo("chelsea", SIZE)).save(folder / "chelsea.png")
    counts = plan_counts(_exp(folder), path)
    assert (counts["items"], counts["reused"], len(counts["pending"])) == (3, 2, 1)
    from gui.plan import make_plan

    plan = make_plan(_exp(folder), path, {"niqe": {"state": "ready"}})
    assert (plan.items, plan.pending, plan.reused) == (3, 1, 2)
    assert "2 reused from the store" in plan.lines()[0]


def _legacy_store(path: Path, exp: Experiment) -> None:
    """A store as the version before content identity wrote it (schema 2, ids by name)."""
    from engine.store.db import MIGRATIONS

    db = sqlite3.connect(str(path))
    db.executescript(MIGRATIONS[1] + MIGRATIONS[2])
    db.execute("PRAGMA user_version = 2")
    db.execute("INSERT INTO experiments (id, created, spec, total) VALUES (?, 0, ?, ?)",
               (exp.id, exp.to_json(), len(exp.images)))
    db.execute("INSERT INTO runs (experiment_id, started, manifest) VALUES (?, 0, '{}')", (exp.id,))
    for i, path_ in enumerate(exp.images):
        name = exp.image_name(path_)
        item_id = f"old{i}"
        db.execute("INSERT INTO items (item_id, experiment_id, idx, image, image_name, metric, attack, status) "
                   "VALUES (?, ?, ?, ?, ?, 'niqe', 'ifgsm', 'done')", (item_id, exp.id, i, path_, name))
        for k, d in enumerate(("none", "jpeg(q=50)")):
            db.execute("INSERT INTO rows (item_id, experiment_id, position, defence, data) VALUES (?, ?, ?, ?, ?)",
                       (item_id, exp.id, k, d, json.dumps({"image_name": name, "defence_label": d, "clear": -1.0})))
    db.commit()
    db.close()


def test_a_store_of_the_previous_version_is_read_as_it_was_and_never_mixed(tmp_path):
    folder = _folder(tmp_path)
    exp = _exp(folder)
    path = tmp_path / "r.sqlite"
    _legacy_store(path, exp)
    with ResultStore(path, readonly=True) as old:  # read as it is, without migrating
        assert [r["clear"] for r in old.rows(exp.id)] == [-1.0] * 4
        assert reuse_plan(exp, old).legacy
    with ResultStore(path) as store:
        assert store.schema_version == 3
        assert [r["clear"] for r in store.rows(exp.id)] == [-1.0] * 4  # migrated, still readable
        assert len(store.done_item_ids(exp.id)) == 2
        started, _ = _run(exp, store)
        assert (started.reused, started.pending) == (0, 2)  # the old rows are not reused ...
        assert any("earlier version" in n for n in started.notes)
        rows = store.rows(exp.id)
        assert len(rows) == 4 and all(r["clear"] != -1.0 for r in rows)  # ... nor mixed in
        assert store.identity(exp.id) == "content"


def test_two_experiments_sharing_a_unit_give_it_one_id_and_seed(tmp_path):
    folder = _folder(tmp_path, ("astronaut",))
    a = content_items(_exp(folder))[0]
    b = content_items(_exp(folder, defences=["median-blur", "jpeg:q=50"]))[0]
    assert (a.id, a.seed) == (b.id, b.seed)
    c = content_items(_exp(folder, seed=1))[0]
    d = content_items(_exp(folder, eot_draws=2))[0]
    assert len({a.id, c.id, d.id}) == 3 and a.seed != c.seed


def test_the_cli_says_how_many_items_were_reused(tmp_path, capsys):
    from engine.cli import main

    folder = _folder(tmp_path, ("astronaut",))
    args = ["run", str(folder), "--metric", "niqe", "--attack", ATTACK, "--out", str(tmp_path / "out"), "-q"]
    assert main(args) == 0
    assert "0 reused from the store, 1 to compute" in capsys.readouterr().err
    assert main([*args, "--defence", "median-blur"]) == 0
    err = capsys.readouterr().err
    assert "0 reused from the store, 1 to compute" in err and "computed again for new defences" in err
    assert main([*args, "--defence", "median-blur"]) == 0
    assert "1 reused from the store, 0 to compute" in capsys.readouterr().err


def test_rows_of_a_deterministic_attack_do_not_depend_on_the_seed_derivation(tmp_path):
    """The per-item seed is now derived from content instead of the file name and the
    defence list; a deterministic attack and defence give the same numbers under any
    seed, so their rows are those the previous derivation gave."""
    folder = _folder(tmp_path, ("astronaut",))
    rows = []
    for seed in (0, 7):
        with ResultStore(tmp_path / f"r{seed}.sqlite") as store:
            exp = _exp(folder, seed=seed)
            _run(exp, store)
            rows.append({r["defence_label"]: r for r in store.rows(exp.id)})
    assert rows[0]["none"]["seed"] != rows[1]["none"]["seed"]
    for label in ("none", "jpeg(q=50)"):
        for key in ("clear", "attacked", "defended-clear", "defended-attacked", "attacked_8bit"):
            assert rows[0][label][key] == rows[1][label][key], (label, key)
