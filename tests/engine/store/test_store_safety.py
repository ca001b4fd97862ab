"""The store under damage and concurrency: versions, damaged files, leases, salvage."""
from __future__ import annotations

import sqlite3
import time

import pytest

from engine.core.errors import describe
from engine.results.export import export_csv
from engine.store.db import SCHEMA, SCHEMA_VERSION, ResultStore, StoreCorrupt, StoreError, StoreTooNew
from engine.store.check import check_store, salvage_store
from tests.engine._stores import damage_page, fill_store, synthetic_experiment


def test_old_store_is_migrated_forward(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)  # a store as made before versioning: user_version 0, no leases
    db.executescript(SCHEMA)
    db.close()
    with ResultStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.leases("any") == []


def test_newer_store_is_refused_clearly(tmp_path):
    path = tmp_path / "new.sqlite"
    fill_store(path, synthetic_experiment(2))
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    for readonly in (False, True):
        with pytest.raises(StoreTooNew, match="newer version") as err:
            ResultStore(path, readonly=readonly)
        assert describe(err.value)[1] == 4


def test_damaged_store_is_never_written(tmp_path):
    path = tmp_path / "r.sqlite"
    exp = fill_store(path)
    damage_page(path)
    before = path.read_bytes()
    with pytest.raises(StoreCorrupt, match="--salvage"):
        ResultStore(path)
    assert path.read_bytes() == before
    assert not path.with_name(path.name + "-wal").exists() or path.with_name(path.name + "-wal").stat().st_size == 0
    with pytest.raises(StoreError):  # reading the damaged rows is a StoreError too, not sqlite's
        with ResultStore(path, readonly=True) as store:
            store.rows(exp.id)


@pytest.mark.parametrize("damage", ["garbage header", "truncated"])
def test_unreadable_files_are_store_errors(tmp_path, damage):
    path = tmp_path / "r.sqlite"
    fill_store(path, synthetic_experiment(2))
    data = path.read_bytes()
    path.write_bytes(b"\x00garbage" * 20 + data[160:] if damage == "garbage header" else data[:3000])
    for readonly in (False, True):
        with pytest.raises(StoreError) as err:
            with ResultStore(path, readonly=readonly) as store:
                store.rows()
        message, code = describe(err.value)
        assert code == 4 and str(path) in message


def test_check_and_salvage_keep_every_readable_row(tmp_path):
    path = tmp_path / "r.sqlite"
    exp = fill_store(path)
    with ResultStore(path, readonly=True) as store:
        original = {r["item_id"]: [] for r in store.rows(exp.id)}
        for r in store.rows(exp.id):
            original[r["item_id"]].append(r)
    assert check_store(path).ok
    damage_page(path)
    report = check_store(path)
    assert not report.ok and "rows" in report.damaged and report.readable["items"] == len(exp.items())
    assert "--salvage" in report.text()
    target = tmp_path / "salvaged.sqlite"
    counts = salvage_store(path, target)
    assert counts["items dropped"] >= 1 and counts["items"] == len(exp.items()) - counts["items dropped"]
    export_csv(ResultStore(target, readonly=True), tmp_path / "csv", exp.id)
    with ResultStore(target) as salvaged:  # writable again: a resume can go on from it
        rows = salvaged.rows(exp.id)
        kept = {r["item_id"] for r in rows}
        assert rows == [r for item in original for r in original[item] if item in kept]
        assert salvaged.done_item_ids(exp.id) == kept
    assert check_store(target).ok
    with pytest.raises(Exception, match="exists already"):
        salvage_store(path, target)


def test_claims_never_overlap_and_expire(tmp_path):
    path = tmp_path / "r.sqlite"
    exp = synthetic_experiment(4)
    ids = [it.id for it in exp.items()]
    a, b = ResultStore(path), ResultStore(path)
    since = time.time()
    got_a, held_a = a.claim(exp.id, ids[:3], "A", ttl=0.5, since=since)
    got_b, held_b = b.claim(exp.id, ids, "B", ttl=60, since=since)
    assert got_a == ids[:3] and held_a == []
    assert got_b == ids[3:] and held_b == ids[:3]
    time.sleep(0.6)  # A stopped renewing: its leases expire and B takes the items over
    assert b.claim(exp.id, ids[:3], "B", ttl=60, since=since)[0] == ids[:3]
    a.release("A")
    b.release("B", ids[:1])
    assert [l["item_id"] for l in b.leases(exp.id)] == sorted(ids[1:])
    a.close()
    b.close()


def test_items_finished_by_another_run_are_not_claimed(tmp_path):
    path = tmp_path / "r.sqlite"
    exp = synthetic_experiment(3)
    items = exp.items()
    with ResultStore(path) as store:
        since = time.time()
        store.open_experiment(exp, {})
        store.write_failure(exp.id, items[0], "boom", "attack")          # failed during our run
        store.write_item(exp.id, items[1], [], clean_score=1, attacked_score=2, steps=[], seconds=0)  # done
        got, held = store.claim(exp.id, [it.id for it in items], "me", ttl=60, since=since)
        assert got == [items[2].id] and held == []
        # a failure from before this run started is retried, as a resume does
        assert store.claim(exp.id, [items[0].id], "me", ttl=60, since=time.time() + 1)[0] == [items[0].id]


def test_two_processes_opening_a_new_store_together_migrate_it_once(tmp_path):
    """The version a process read before another one migrated the store is read again under
    the write lock (it was: 'duplicate column name: image_hash', exit 4, in a shared run)."""
    from engine.store.db import SCHEMA_VERSION, ResultStore

    path = tmp_path / "results.sqlite"
    other = ResultStore(path)          # the other process: created and migrated the store
    assert other.schema_version == SCHEMA_VERSION
    late = ResultStore(path)
    late._migrate(0)                   # this one had read the version before the other migrated
    assert late.schema_version == SCHEMA_VERSION
    assert late._db.in_transaction is False
    late.close()
    other.close()
