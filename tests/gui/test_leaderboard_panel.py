"""The leaderboard tab shows the engine's leaderboard of a stored experiment."""
import numpy as np

from engine.results.leaderboard import store_leaderboard
from engine.spec.experiment import Experiment
from engine.store.db import ResultStore
from gui.leaderboard_panel import LeaderboardPanel


def _store(path):
    exp = Experiment(images=[f"/x/{i}.png" for i in range(4)], metrics=["niqe"], attacks=["fgsm"],
                     defences=["jpeg", "median-blur"])
    rng = np.random.default_rng(0)
    with ResultStore(path) as store:
        store.open_experiment(exp, {})
        for item in exp.items():
            rows = [{"image_name": item.image_name, "metric": "niqe", "attack": "fgsm", "attack_preset": "default",
                     "defence": d.name, "defence_preset": "default", "defence_label": d.label,
                     "robust_abs_gain": g + rng.uniform(0, 0.02), "quality_score": q, "robustness": 0.5,
                     "error": None} for d, g, q in zip(item.defences, (0.8, 0.1, 0.3), (0.7, 0.6, 0.4))]
            store.write_item(exp.id, item, rows, clean_score=1.0, attacked_score=0.5, steps=[], seconds=1.0)
    return exp


def test_panel_shows_the_stored_leaderboard(qtbot, tmp_path):
    path = tmp_path / "r.sqlite"
    _store(path)
    w = LeaderboardPanel()
    qtbot.addWidget(w)
    w.floor.setValue(0.5)
    call = w.show_store(str(path))
    assert call.wait()  # the thread has ended and its result was delivered
    assert w.rows == store_leaderboard(str(path), floor=0.5)
    assert w.attack.currentText() == "all attacks"
    names = [w.table.item(i, 2).text() for i in range(w.table.rowCount())]
    assert names == ["none", "jpeg", "median-blur"]  # median-blur is below the floor: last, unranked
    assert w.table.item(1, 0).text() == "1" and w.table.item(2, 0).text() == "–"
    assert "[" in w.table.item(1, 3).text()  # remaining gain with its interval
    assert "below the floor" in w.table.item(2, 6).text()
    assert w.note.text().startswith("3 rows")   # the rows shown, not of every table computed
    w.table_kind.setCurrentText("metrics")
    assert w.table.rowCount() == 1 and w.table.item(0, 1).text() == "niqe"
    assert w.note.text().startswith("1 row ·")


def test_panel_reports_an_unreadable_store(qtbot, tmp_path):
    w = LeaderboardPanel()
    qtbot.addWidget(w)
    call = w.show_store(str(tmp_path / "missing.sqlite"), "nope")
    assert call.wait()
    assert "could not compute the leaderboard" in w.note.text()


def test_wait_waits_for_a_computation_that_clear_dropped(qtbot, tmp_path, monkeypatch):
    """Shutdown waits for every leaderboard computation, also one the panel no longer shows."""
    import time

    import gui.leaderboard_panel as panel_module

    ended = []

    def slow_leaderboard(*args):
        time.sleep(0.5)
        ended.append(True)
        return []

    monkeypatch.setattr(panel_module, "_store_leaderboard", slow_leaderboard)
    panel = LeaderboardPanel()
    qtbot.addWidget(panel)
    panel.show_store(str(tmp_path / "results.sqlite"))
    panel.clear()                 # the user opened another folder: the answer will be dropped
    assert panel.wait(10_000)
    assert ended == [True]
    assert panel.rows == [] and panel.shown_experiment() is None
