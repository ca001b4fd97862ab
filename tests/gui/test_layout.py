"""Layout: the window never widens itself, and at 1024×700 every widget gets its minimum
size (issue 22, item 4)."""
from __future__ import annotations

from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from tests.gui.conftest import fake_store


def _shown_store(w, photo_folder, tmp_path, **row_extra):
    exp = Experiment(images=find_images(photo_folder), root=str(photo_folder.resolve()), metrics=["niqe"],
                     attacks=["ifgsm"])
    fake_store(tmp_path / "store" / "results.sqlite", exp, done=3, **row_extra)
    assert w.open_store(tmp_path / "store" / "results.sqlite")


def _too_narrow(w) -> list[str]:
    from PySide6.QtWidgets import QWidget

    out = []
    for child in w.findChildren(QWidget):
        if not child.isVisible() or child.width() <= 0:
            continue
        hint = child.minimumSizeHint()
        if hint.isValid() and child.width() + 1 < hint.width():
            name = child.objectName() or type(child).__name__
            text = getattr(child, "text", lambda: "")() if hasattr(child, "text") else ""
            out.append(f"{name} {child.width()} < {hint.width()} {str(text)[:30]!r}")
    return out


def test_the_window_keeps_its_width_when_rows_and_plots_arrive(qtbot, make_window, settings, photo_folder,
                                                               tmp_path):
    w = make_window(settings)
    w.resize(1280, 800)
    qtbot.wait(50)
    width = w.width()
    # a long certificate summary in the results header (certified smoothing rows)
    _shown_store(w, photo_folder, tmp_path, certified_holds=True, certified_width=0.0123)
    qtbot.wait(50)
    assert "certificate holds" in w.rows_label.toolTip()
    for i in range(w.tabs.count()):   # every tab, the plot tabs included
        w.tabs.setCurrentIndex(i)
        qtbot.wait(30)
        assert w.width() == width, (w.tabs.tabText(i), w.width())


def test_at_1024_by_700_no_widget_is_narrower_than_its_minimum(qtbot, make_window, settings, photo_folder,
                                                               tmp_path):
    w = make_window(settings, resize=False)
    w.resize(1024, 700)
    w.reset_layout()
    _shown_store(w, photo_folder, tmp_path)
    qtbot.wait(100)
    mins = {name: getattr(w, name).minimumSizeHint().width() for name in
            ("images_dock", "experiment_dock", "central_splitter", "top_splitter", "tabs", "inspector", "curves")}
    assert w.width() == 1024 and w.height() == 700, mins
    for tab in range(w.tabs.count()):
        w.tabs.setCurrentIndex(tab)
        for ptab in range(w.panel.tabs.count()):
            w.panel.tabs.setCurrentIndex(ptab)
            qtbot.wait(20)
            assert _too_narrow(w) == [], (w.tabs.tabText(tab), w.panel.tabs.tabText(ptab))
    assert w.inspector.view.height() >= 220   # the inspector is the app's centre
