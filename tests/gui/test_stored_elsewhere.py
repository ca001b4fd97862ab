"""A grown grid's plan names the items the store holds under another experiment (issue 22, item 3)."""
from __future__ import annotations

from pathlib import Path

from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from engine.store.db import ResultStore
from gui.stored_elsewhere import stored_elsewhere
from tests.gui.conftest import fake_store


def _exp(folder: Path, metrics: list[str], **kw) -> Experiment:
    return Experiment(images=find_images(folder), root=str(folder.resolve()), metrics=metrics, attacks=["ifgsm"],
                      seed=3, **kw)


def test_a_grown_grid_names_the_items_stored_under_another_experiment(qtbot, make_window, settings,
                                                                      photo_folder, tmp_path):
    store = tmp_path / "out" / "results.sqlite"
    brisque = _exp(photo_folder, ["brisque"])
    fake_store(store, brisque, done=len(brisque.items()))            # 3 BRISQUE items, finished
    grown = _exp(photo_folder, ["brisque", "niqe"])
    with ResultStore(store, readonly=True) as s:
        listed = s.experiments()
    assert stored_elsewhere(grown, listed) == [(brisque.id, 3, True)]
    assert stored_elsewhere(_exp(photo_folder, ["niqe"]), listed) == []          # nothing in common
    assert stored_elsewhere(_exp(photo_folder, ["brisque"], adaptive=True), listed) == []
    other_seed = Experiment(images=grown.images, root=grown.root, metrics=grown.metrics, attacks=["ifgsm"], seed=4)
    assert stored_elsewhere(other_seed, listed) == []

    w = make_window(settings)
    assert w.open_store(store)
    w.panel.set_state({"metrics": ["brisque", "niqe"], "attacks": {"ifgsm": {"checked": True}}, "defences": {},
                       "seed": 3, "device": "cpu", "output": str(store.parent)})
    dialog = w.runs.preview()
    assert dialog is not None
    text = dialog.text.text()
    assert f"3 under experiment {brisque.id[:8]}" in text and "computes them again" in text
    dialog.reject()
