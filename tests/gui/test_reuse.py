"""A grown grid reuses what the store holds, and says so at once (issue 22 item 3); no image
is decoded on the GUI thread (issue 23 part 1)."""
from __future__ import annotations

import threading

from engine.run import identity
from engine.spec.folders import find_images
from engine.store.db import ResultStore
from tests.gui.conftest import (
    FAST_ATTACK,
    configure,
    fake_store,
    record_threads,
    run_to_end,
)


def _grid(w, folder, metrics):
    w.panel.set_checked_metrics(metrics)
    return w.panel.build_experiment(find_images(folder), str(folder.resolve()))


def test_a_grown_grid_shows_its_reused_rows_when_the_run_starts(qtbot, make_window, settings, photo_folder,
                                                                  tmp_path):
    out = tmp_path / "out"
    w = make_window(settings)
    configure(w, photo_folder, out, defences={}, save_images=False)
    brisque = _grid(w, photo_folder, ["brisque"])
    fake_store(out / "results.sqlite", brisque, done=3)          # 3 BRISQUE items, finished
    grown = _grid(w, photo_folder, ["brisque", "niqe"])
    assert grown.id != brisque.id

    # the plan preview (made in the background) names the reused items
    w.runs.preview().wait()
    qtbot.waitUntil(lambda: w.runs.plan_dialog is not None, timeout=30_000)
    text = w.runs.plan_dialog.text.text()
    assert "3 item(s) to compute of 6, 3 reused from the store" in text, text
    w.runs.plan_dialog.reject()

    seen = {}

    def at_first_item(_ev):   # before any item of this run has finished
        if not seen:
            seen.update(rows=[r["metric"] for r in w.model.rows], bar=w.panel.progress.bar.format(),
                        header=w.results.rows_label.text(), done=w.session.image_status(grown.images[0]).done)

    w.session.item_started.connect(at_first_item)
    run_to_end(qtbot, w)
    assert seen["rows"] == ["brisque"] * 3, seen
    assert "3 reused from the store" in seen["bar"] and "0 / 3 items" in seen["bar"]
    assert "3 reused from the store" in seen["header"]
    assert seen["done"] == 1   # the image's BRISQUE item is done before the run computes anything
    assert sorted(r["metric"] for r in w.model.rows) == ["brisque"] * 3 + ["niqe"] * 3
    assert "3 reused from the store" in w.panel.progress.bar.format()
    assert "3 reused from the store" in w.results.rows_label.text()
    with ResultStore(out / "results.sqlite", readonly=True) as store:
        assert len(store.rows(grown.id)) == 6


def test_the_gui_thread_never_decodes_an_image(qtbot, make_window, settings, photo_folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    w = make_window(settings)
    configure(w, photo_folder, out, defences={}, save_images=False)
    stored = _grid(w, photo_folder, ["niqe"])
    fake_store(out / "results.sqlite", stored, done=1)
    threads = record_threads(monkeypatch, identity, "_decode_hash")
    identity._MEMO.clear()
    for p in photo_folder.glob("*.png"):   # a new modification time: the store's hash cache misses
        p.write_bytes(p.read_bytes())
    w.open_folder(str(photo_folder))      # shows the stored experiment: its items by the store's view
    assert w.exp_id == stored.id and len(w.model.rows) == 1
    assert len(w.session.items) == 3 and sum(i.status == "done" for i in w.session.items.values()) == 1
    w.panel.set_state({"metrics": ["niqe", "brisque"], "attacks": FAST_ATTACK, "defences": {}, "seed": 3,
                       "device": "cpu", "save_images": False, "output": str(out)})
    w.runs.preview().wait()
    qtbot.waitUntil(lambda: w.runs.plan_dialog is not None, timeout=30_000)
    w.runs.plan_dialog.reject()
    run_to_end(qtbot, w)
    assert threads, "the plan and the run hash the images"
    assert threading.main_thread() not in threads
    assert len(w.model.rows) == 6 and all(i.status == "done" for i in w.session.items.values())


def test_keep_attacked_lets_a_defence_added_later_reuse_the_attack(qtbot, make_window, settings, photo_folder,
                                                                    tmp_path, monkeypatch):
    from engine.attacks.ifgsm import IFGSM
    from tests.gui.conftest import DEFENCES

    out = tmp_path / "out"
    w = make_window(settings)
    configure(w, photo_folder, out, defences={"jpeg": DEFENCES["jpeg"]}, save_images=False)
    assert w.panel.build_experiment(find_images(photo_folder), str(photo_folder.resolve())).keep_attacked is False
    w.panel.options.keep_attacked.setChecked(True)
    assert w.panel.options.state()["keep_attacked"] is True
    run_to_end(qtbot, w)
    assert len(list((out / "attacked").glob("*.npy"))) == 3

    calls = []
    original = IFGSM.run

    def counted(self, *args, **kwargs):
        calls.append(threading.current_thread())
        return (yield from original(self, *args, **kwargs))

    monkeypatch.setattr(IFGSM, "run", counted)
    w.panel.set_state({"metrics": ["niqe"], "attacks": FAST_ATTACK, "defences": DEFENCES, "seed": 3,
                       "device": "cpu", "save_images": False, "output": str(out)})
    assert w.panel.options.keep_attacked.isChecked() is False   # a state without the key: off
    w.runs.preview().wait()
    qtbot.waitUntil(lambda: w.runs.plan_dialog is not None, timeout=30_000)
    assert "3 attack(s) reused from stored attacked images" in w.runs.plan_dialog.text.text()
    w.runs.plan_dialog.reject()
    run_to_end(qtbot, w)
    assert calls == []
    assert sorted(r["defence"] for r in w.model.rows if r["defence"] == "median-blur") == ["median-blur"] * 3
