"""Look: Fusion with a light palette, white publication-style plots, a few accents."""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

STYLE_SHEET = """
QGroupBox { font-weight: 600; margin-top: 14px; border: 1px solid #dadce0; border-radius: 4px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 3px; color: #3c4043; }
QPushButton#run_button { background: #1a73e8; color: white; font-weight: 600; border-radius: 4px;
                         padding: 4px 12px; border: 1px solid #1666c5; }
QPushButton#run_button:hover { background: #1666c5; }
QPushButton#run_button[running="true"] { background: #d93025; border-color: #b3261e; }
QPushButton#run_button:disabled { background: #9aa0a6; border-color: #9aa0a6; }
QFrame#banner { background: #e8f0fe; border: 1px solid #aecbfa; border-radius: 4px; }
QLabel#inspector_readout { color: #3c4043; }
QDockWidget::title { background: #eef0f3; padding: 4px 6px; font-weight: 600; }
QTabBar::tab { padding: 4px 12px; }
QTableView { gridline-color: #e3e5e8; }
QHeaderView::section { background: #f1f3f4; padding: 3px 6px; border: none;
                       border-right: 1px solid #dadce0; border-bottom: 1px solid #dadce0; }
"""


def apply_style(app: QApplication) -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(background="w", foreground="#202124", antialias=True, imageAxisOrder="row-major")
    pal = app.palette()
    pal.setColor(QPalette.ColorRole.Window, QColor("#f6f7f9"))
    pal.setColor(QPalette.ColorRole.Base, QColor("#ffffff"))
    pal.setColor(QPalette.ColorRole.AlternateBase, QColor("#f4f6f8"))
    pal.setColor(QPalette.ColorRole.Highlight, QColor("#1a73e8"))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    pal.setColor(QPalette.ColorRole.Text, QColor("#202124"))
    pal.setColor(QPalette.ColorRole.WindowText, QColor("#202124"))
    pal.setColor(QPalette.ColorRole.Button, QColor("#f1f3f4"))
    app.setPalette(pal)
    app.setStyleSheet(STYLE_SHEET)
