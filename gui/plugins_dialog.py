"""Tools → Plug-ins…: load a plug-in file or folder, or a TorchScript metric, and see what
each plug-in registered and any error.

Loading goes through the engine's one loader (:mod:`engine.plugins`): a bad file is
refused with its file and line (shown here and in the log) and the rest of the lab
keeps working. The component lists follow the registries (``loaded`` signal).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)


def startup_plugins() -> tuple[list[Any], list[str]]:
    """Installed packages' entry points and the files in ``IQA_LAB_PLUGINS``, loaded at
    start; (the plug-ins loaded, one line per error)."""
    from engine.plugins import PluginError, env_paths, load_entry_points, load_path

    recs, errors = load_entry_points()
    lines = [str(e) for e in errors]
    for path in env_paths():
        try:
            recs += load_path(path)
        except PluginError as exc:
            lines.append(str(exc))
    return recs, lines


def torchscript_spec(path: str, lower_better: bool, low: float, high: float) -> str:
    """The metric's name with its parameters, as the CLI takes it."""
    return f"torchscript:path={path}:lower_better={int(lower_better)}:range={low:g},{high:g}"


class PluginsDialog(QDialog):
    """The plug-ins loaded in this session, what each registered, and the last error.

    Signals:
        loaded: a plug-in was loaded (the component lists should follow the registries).
        metricAdded: a metric with parameters to list (a TorchScript file): its entry dict.
        message: (level, text) for the log.
    """

    loaded = Signal()
    metricAdded = Signal(dict)
    message = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Plug-ins")
        self.setObjectName("plugins_dialog")
        self.resize(760, 460)
        lay = QVBoxLayout(self)
        intro = QLabel("Metrics, attacks and defences of your own: a Python file or folder that imports "
                       "<code>engine.api</code> (start from <code>python main.py new-plugin metric NAME</code>; "
                       "see docs/plugins.md), an installed package with <code>iqa_lab.*</code> entry points, "
                       "or a TorchScript model as a metric.")
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(intro)

        self.tree = QTreeWidget()
        self.tree.setObjectName("plugins_tree")
        self.tree.setHeaderLabels(["plug-in", "registers", "version / sha256"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, 240)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # the file name stays visible
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(self.tree, 2)

        buttons = QHBoxLayout()
        self.file_button = QPushButton("Load file…")
        self.folder_button = QPushButton("Load folder…")
        self.file_button.clicked.connect(self._choose_file)
        self.folder_button.clicked.connect(self._choose_folder)
        buttons.addWidget(self.file_button)
        buttons.addWidget(self.folder_button)
        buttons.addStretch(1)
        lay.addLayout(buttons)

        ts = QHBoxLayout()
        self.ts_button = QPushButton("Add TorchScript metric…")
        self.ts_button.setToolTip("a TorchScript file (torch.jit.save) mapping a (B,3,H,W) batch in [0,1] to "
                                  "(B,) scores; scored with gradients, so white-box attacks work on it")
        self.ts_button.clicked.connect(self._choose_torchscript)
        self.ts_lower = QCheckBox("lower is better")
        self.ts_low, self.ts_high = QDoubleSpinBox(), QDoubleSpinBox()
        for box, value in ((self.ts_low, 0.0), (self.ts_high, 1.0)):
            box.setRange(-1e6, 1e6)
            box.setDecimals(3)
            box.setValue(value)
        ts.addWidget(self.ts_button)
        ts.addWidget(self.ts_lower)
        ts.addWidget(QLabel("range"))
        ts.addWidget(self.ts_low)
        ts.addWidget(QLabel("to"))
        ts.addWidget(self.ts_high)
        ts.addStretch(1)
        lay.addLayout(ts)

        self.error = QPlainTextEdit()
        self.error.setObjectName("plugin_error")
        self.error.setReadOnly(True)
        self.error.setPlaceholderText("errors of plug-ins that could not be loaded appear here")
        self.error.setMaximumHeight(90)
        self.error.setStyleSheet("QPlainTextEdit { color: #b3261e; }")
        lay.addWidget(self.error, 1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        lay.addWidget(close)
        self._models: list[tuple[str, str, str]] = []  # TorchScript metrics: (label, spec, sha256)
        self.refresh()

    # ---- what is loaded --------------------------------------------------------------------
    def refresh(self) -> None:
        """List every loaded plug-in with what it registered."""
        from engine.plugins import loaded

        self.tree.clear()
        for rec in loaded():
            made = rec.version or (rec.sha256 or "")[:16]
            row = QTreeWidgetItem([rec.label, ", ".join(f"{k} {n}" for k, n in rec.components), made])
            row.setToolTip(0, rec.source)
            self.tree.addTopLevelItem(row)
        for label, spec, sha in self._models:
            row = QTreeWidgetItem([label, "metric torchscript  " + spec.split(":", 2)[2], sha[:16]])
            row.setToolTip(1, spec)
            self.tree.addTopLevelItem(row)

    def show_errors(self, lines: list[str]) -> None:
        """Add error lines (the session's errors stay listed, newest last)."""
        for line in lines:
            self.error.appendPlainText(line)

    # ---- loading ---------------------------------------------------------------------------
    def load(self, path: str | Path) -> bool:
        """Load a plug-in file or folder; on a failure show its error (file and line)."""
        from engine.plugins import PluginError, load_path

        try:
            recs = load_path(path)
        except PluginError as exc:
            self.show_errors([str(exc)])
            self.message.emit("error", str(exc))
            return False
        for rec in recs:
            what = ", ".join(f"{k} {n}" for k, n in rec.components)
            self.message.emit("info", f"loaded plug-in {rec.label}: {what}")
        self.refresh()
        self.loaded.emit()
        return True

    def add_torchscript(self, path: str | Path, lower_better: bool = False, low: float = 0.0,
                        high: float = 1.0) -> str | None:
        """List a TorchScript file as a metric (checked by loading it once); its spec, or None."""
        from engine.metrics import MetricError, create_metric

        spec = torchscript_spec(str(Path(path).resolve()), lower_better, low, high)
        try:
            create_metric("torchscript", path=str(path), lower_better=lower_better, range=f"{low},{high}")
        except MetricError as exc:
            self.show_errors([str(exc)])
            self.message.emit("error", str(exc))
            return None
        from engine.plugins.loader import file_hash

        self._models = [m for m in self._models if m[1] != spec]
        self._models.append((f"torchscript file {Path(path).resolve()}", spec, file_hash(Path(path))))
        self.refresh()
        self.metricAdded.emit({"name": spec, "state": "ready", "reason": "", "lower_better": lower_better,
                               "source": "torchscript", "bounds": (low, high),
                               "plugin": f"torchscript file {Path(path).resolve()}"})
        self.message.emit("info", f"added TorchScript metric {spec}")
        return spec

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a plug-in file", "", "Python files (*.py)")
        if path:
            self.load(path)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Load a plug-in folder")
        if path:
            self.load(path)

    def _choose_torchscript(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A TorchScript metric", "", "TorchScript (*.pt *.pth)")
        if path:
            self.add_torchscript(path, self.ts_lower.isChecked(), self.ts_low.value(), self.ts_high.value())
