"""Bad inputs, cancelling and closing during a run."""
from __future__ import annotations

import pytest

from engine.store.db import ResultStore
from tests.gui.conftest import configure, run_to_end

#: per image: a quick I-FGSM item, then a 150-step PGD item (a run of 3 × (4 + 151) steps)
LONG_ATTACK = {"ifgsm": {"checked": True, "preset": "", "params": {"iters": 3}},
               "pgd": {"checked": True, "preset": "", "params": {"iters": 150, "alpha": 0.25 / 255}}}


def test_corrupt_images_show_their_error_and_the_run_goes_on(qtbot, make_window, settings, photo_folder, tmp_path):
    (photo_folder / "empty.png").write_bytes(b"")
    (photo_folder / "notes.jpg").write_text("this is not an image")
    w = make_window(settings)
    configure(w, photo_folder, tmp_path / "out", defences={})
    assert len(w.images.paths()) == 5
    run_to_end(qtbot, w)

    bad = [p for p in w.images.paths() if p.endswith(("empty.png", "notes.jpg"))]
    good = [p for p in w.images.paths() if p not in bad]
    for p in bad:
        assert w.images.status(p) == "error"
        assert w.images.error(p)
        item = w.images._item(p)
        assert "error" in item.text() and w.images.error(p).splitlines()[0][:20] in item.toolTip()
    assert all(w.images.status(p) == "done" for p in good)
    assert w.log.contains("empty.png") and w.log.contains("notes.jpg")
    assert w.log.errors >= 2
    good_rows = [r for r in w.model.rows if not r.get("error")]
    assert len(good_rows) == 3  # 3 photos × the undefended row
    assert {r["image_name"] for r in w.model.rows if r.get("error")} == {"empty.png", "notes.jpg"}


def test_cancel_stops_a_long_run_and_keeps_finished_rows(qtbot, make_window, settings, photo_folder, tmp_path):
    w = make_window(settings)
    configure(w, photo_folder, tmp_path / "out", attack=LONG_ATTACK, defences={})
    w.start_run()
    qtbot.waitUntil(lambda: w.model.rowCount() >= 1, timeout=120_000)  # the first item is done
    steps_at_cancel = w.curves.points_received
    w.panel.run_button.click()  # Run became Cancel
    assert w.panel.run_button.text() == "Cancelling…"
    qtbot.waitUntil(lambda: not w.controller.running and not w.panel.running, timeout=60_000)
    assert w.panel.run_button.text() == "Run"

    store = ResultStore(w.store_path, readonly=True)
    stored = store.rows(w.exp_id)
    assert len(stored) == 1 and stored[0]["attack"] == "ifgsm"  # the finished item is kept
    assert len(w.model.rows) == len(stored)
    assert [it["status"] for it in store.items(w.exp_id)] == ["done"]
    # it stopped within a few attack steps of the click, far from the 151 of the PGD item
    assert w.curves.points_received - steps_at_cancel < 20
    assert w.log.contains("cancelled")


def test_closing_during_a_run_cancels_cleanly(qtbot, make_window, settings, photo_folder, tmp_path):
    w = make_window(settings)
    configure(w, photo_folder, tmp_path / "out", attack=LONG_ATTACK, defences={})
    w.start_run()
    qtbot.waitUntil(lambda: w.curves.points_received >= 2, timeout=120_000)
    w.close()
    assert not w.isVisible()  # hidden at once; the worker is cancelled, not killed…
    qtbot.waitUntil(lambda: not w.controller.running, timeout=60_000)   # …and stops after its step
    qtbot.waitUntil(lambda: w._closing, timeout=5_000)                   # then the window closes
    assert settings.value("lastFolder") == str(photo_folder.resolve())
    store = ResultStore(w.store_path, readonly=True)
    assert len(store.rows(w.exp_id)) < 6


@pytest.mark.parametrize("state", [{"metrics": []}, {"metrics": ["niqe"], "attacks": {}}])
def test_incomplete_experiment_is_refused_in_the_log(make_window, settings, photo_folder, tmp_path, state):
    w = make_window(settings)
    configure(w, photo_folder, tmp_path / "out")
    w.panel.set_state(state)
    w.start_run()
    assert not w.controller.running
    assert w.log.errors == 1 and w.log.contains("cannot start")
