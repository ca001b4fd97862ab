"""Two runs on one store share the work: each item is computed once, dead leases expire."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from engine.core.events import ItemFinished
from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from engine.run.driver import run_experiment
from engine.store.db import ResultStore
from tests.conftest import photo
from engine.run.identity import content_items

ROOT = Path(__file__).resolve().parents[3]
# both processes import everything first, then wait at the gate, so they start together
GATED = ("import sys, time, pathlib, torch, pyiqa, engine.cli, engine.run.driver\n"
         "gate = pathlib.Path(sys.argv[1])\n"
         "while not gate.exists():\n    time.sleep(0.01)\n"
         "sys.exit(engine.cli.main(sys.argv[2:]))\n")


def _folder(tmp_path: Path, names: tuple[str, ...]) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in names:
        Image.fromarray(photo(n, (128, 128))).save(folder / f"{n}.png")
    return folder


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_processes_share_an_experiment(tmp_path):
    folder = _folder(tmp_path, ("astronaut", "coffee", "chelsea", "rocket"))
    out, gate = tmp_path / "out", tmp_path / "gate"
    argv = ["run", str(folder), "--metric", "niqe", "--attack", "ifgsm:iters=8,fgsm", "--defence", "jpeg",
            "--out", str(out), "--device", "cpu", "-q", "--no-export"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", GATED, str(gate), *argv], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(1.0)
    gate.touch()
    results = [p.communicate(timeout=540) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    finished = [int(re.search(r"finished (\d+), failed 0", err).group(1)) for _, err in results]
    assert sum(finished) == 8, f"each of the 8 items computed exactly once, got {finished}"
    assert min(finished) >= 1, f"both processes did work: {finished}"
    with sqlite3.connect(out / "results.sqlite") as db:
        statuses = db.execute("SELECT status, COUNT(*) FROM items GROUP BY status").fetchall()
        by_run = dict(db.execute("SELECT run, COUNT(*) FROM items GROUP BY run").fetchall())
        owners = {r: json.loads(m)["owner"] for r, m in db.execute("SELECT run, manifest FROM runs")}
        n_rows, n_distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT item_id || defence) FROM rows").fetchone()
        leases = db.execute("SELECT COUNT(*) FROM leases").fetchone()[0]
    assert statuses == [("done", 8)]
    assert sorted(by_run.values()) == sorted(finished)  # what each run committed, as it reported
    assert len(set(owners.values())) == 2
    assert n_rows == n_distinct == 8 * 2
    assert leases == 0  # released at the end


def test_a_dead_runs_lease_expires_and_the_item_is_taken_over(tmp_path):
    folder = _folder(tmp_path, ("astronaut", "coffee"))
    exp = Experiment(images=find_images(folder), root=str(folder), metrics=["niqe"],
                     attacks=["ifgsm:iters=1"], defences=[], seed=0, device="cpu")
    first, second = content_items(exp)
    store = ResultStore(tmp_path / "r.sqlite")
    # another host's run claimed the first item, then died (it never renews); the lease is
    # long enough to outlast the run's start on a loaded machine (a shorter one could expire
    # before the plan is made, and the item would then simply run first)
    got, _ = store.claim(exp.id, [first.id], "elsewhere:1234:dead", ttl=4.0, since=time.time())
    assert got == [first.id]
    t0 = time.perf_counter()
    order = [ev.item.id for ev in run_experiment(exp, store) if isinstance(ev, ItemFinished)]
    assert order == [second.id, first.id]  # the free item first, the leased one after its expiry
    assert time.perf_counter() - t0 >= 3.0
    assert store.done_item_ids(exp.id) == {first.id, second.id}
    assert store.leases(exp.id) == []


def test_a_live_lease_is_respected_until_cancel(tmp_path):
    from engine.run.units import CancelToken

    folder = _folder(tmp_path, ("astronaut",))
    exp = Experiment(images=find_images(folder), root=str(folder), metrics=["niqe"],
                     attacks=["ifgsm:iters=1"], defences=[], seed=0, device="cpu")
    store = ResultStore(tmp_path / "r.sqlite")
    store.claim(exp.id, [content_items(exp)[0].id], "elsewhere:1:alive", ttl=600, since=time.time())
    cancel = CancelToken()
    events = []
    for ev in run_experiment(exp, store, cancel=cancel):
        events.append(ev)
        if len(events) == 1:  # RunStarted: the item is held elsewhere, so the run waits; stop it
            cancel.cancel()
    assert not any(isinstance(e, ItemFinished) for e in events)
    assert events[-1].cancelled and store.done_item_ids(exp.id) == set()
    assert [l["owner"] for l in store.leases(exp.id)] == ["elsewhere:1:alive"]
