"""The main window's menus; their shortcuts are :data:`gui.shortcuts.SHORTCUTS`."""
from __future__ import annotations

from typing import Any

from PySide6.QtGui import QKeySequence

from gui.shortcuts import SHORTCUTS


def _key(menu: str, entry: str) -> QKeySequence | None:
    for m, e, k in SHORTCUTS:
        if (m, e) == (menu, entry):
            return QKeySequence(k)
    return None


def build_menus(w: Any) -> None:
    """File, Run, Tools, View and Help of :class:`gui.main_window.MainWindow` ``w``."""
    from gui import help as help_pages
    from gui.study_menu import add_study_menu

    def add(menu: Any, title: str, entry: str, slot: Any) -> Any:
        act = menu.addAction(entry, slot)
        key = _key(title, entry)
        if key is not None:
            act.setShortcut(key)
        return act

    m = w.menuBar().addMenu("&File")
    add(m, "File", "Open folder…", w.images.choose_folder)
    add(m, "File", "Open sample folder", w.load_samples)
    add(m, "File", "Open store…", w.choose_store)
    m.addSeparator()
    w.export_action = add(m, "File", "Export CSV…", w.files.choose_export_csv)
    w.save_images_action = add(m, "File", "Save shown images…", w.files.choose_save_images)
    w.report_action = add(m, "File", "Report…", w.files.choose_report)
    m.addSeparator()
    add(m, "File", "Quit", w.close)
    r = w.menuBar().addMenu("&Run")
    w.run_action = add(r, "Run", "Run", w.start_run)
    w.preview_action = add(r, "Run", "Preview plan…", w.runs.preview)
    w.cancel_action = add(r, "Run", "Cancel", w.cancel_run)
    w.cancel_action.setEnabled(False)
    r.addSeparator()
    add_study_menu(w, r)
    t = w.menuBar().addMenu("&Tools")
    w.plugins_action = t.addAction("Plug-ins…", w.tools.open_plugins)
    w.train_fcn_action = t.addAction("Train FCN filter…", w.tools.open_fcn_training)
    w.train_robust_action = t.addAction("Train robust metric…", w.tools.open_robust_training)
    v = w.menuBar().addMenu("&View")
    v.addAction(w.images_dock.toggleViewAction())
    v.addAction(w.experiment_dock.toggleViewAction())
    v.addAction("Reset layout", w.reset_layout)
    h = w.menuBar().addMenu("&Help")
    w.help_pages = help_pages.HelpPages(w)
    add(h, "Help", "Score definitions", w.help_pages.show_scores)
    add(h, "Help", "How to run a study", w.help_pages.show_study)
    add(h, "Help", "Keyboard shortcuts", w.help_pages.show_shortcuts)
    add(h, "Help", "About", w.help_pages.show_about)
