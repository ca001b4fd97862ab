"""The main window: builds the panels and menus and wires them to the session.

The state (folder, store, experiment shown, the run in flight) lives in
:class:`gui.session.Session`, plain Python; every panel observes it, so all show the same
folder, store and experiment. The engine runs in :class:`gui.worker.RunWorker` on its
own thread; its events reach the session through this window's queued slots.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QCloseEvent, QPaintEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QMainWindow,
    QSplitter,
    QTabWidget,
    QWidget,
)

from gui.aggregate_plots import GainPerDefencePlot, QualityGainPlot
from gui.catalog import scan_metrics
from gui.curves import LiveCurves
from gui.elided_label import ElidedLabel
from gui.experiment_panel import DEFAULT_EXPERIMENT, ExperimentPanel
from gui.file_actions import FileActions
from gui.images_panel import ImagesPanel
from gui.inspector import Inspector
from gui.item_display import ItemDisplay
from gui.leaderboard_panel import LeaderboardPanel
from gui.log_panel import LogBridge, LogPanel
from gui.menus import build_menus
from gui.panel_sync import PanelSync
from gui.plugins_dialog import startup_plugins
from gui.results_view import ResultsView
from gui.run_control import RunControl
from gui.session import Session
from gui.tool_windows import ToolWindows
from gui.warm_up import warm_up
from gui.window_state import (
    SAMPLES_DIR,
    default_output_dir,
    restore_window,
    save_window,
)
from gui.worker import BackgroundCall, BackgroundPool

__all__ = ["APP_NAME", "SAMPLES_DIR", "MainWindow", "default_output_dir"]

APP_NAME = "IQA Purification Lab"
ORG_NAME = "iqa-lab"


class MainWindow(QMainWindow):
    """The desktop app's window.

    Args:
        settings: where to persist state (tests pass an INI file); default: the user's
            QSettings for this app.
        scan: scan the metric list in the background at start (tests may pass False and
            call :meth:`rescan_metrics` themselves).
    """

    def __init__(self, settings: QSettings | None = None, *, scan: bool = True) -> None:
        super().__init__()
        self.settings = settings or QSettings(ORG_NAME, APP_NAME)
        self.setWindowTitle(APP_NAME)
        self.setObjectName("main_window")
        self.setDockNestingEnabled(True)
        self.session = Session(default_output_dir)
        self.pool = BackgroundPool(self)
        self._needs_default_splits = False
        self._closing = False

        # before the component lists are built: installed plug-ins and IQA_LAB_PLUGINS
        self.plugins_loaded, self.plugin_errors = startup_plugins()
        self._build_widgets()
        self.display = ItemDisplay(self.session, self.inspector, self, self.pool)
        self.files = FileActions(self.session, self, self.pool)
        self.runs = RunControl(self.session, self)
        self.tools = ToolWindows(self)
        self.controller = self.runs.controller
        build_menus(self)
        self._wire()
        self._restore_settings()
        self.log_bridge = LogBridge(self)
        self.log_bridge.message.connect(self.log.log)
        self.log_bridge.install()
        for rec in self.plugins_loaded:
            self.log.log("info", f"loaded plug-in {rec.label}: "
                                 + ", ".join(f"{k} {n}" for k, n in rec.components))
        for line in self.plugin_errors:
            self.log.log("error", line)
        if scan:
            self.rescan_metrics()
        QTimer.singleShot(0, self.freeze_startup_objects)
        self._warm_up_pending = True  # started after the first paint: it would compete with it

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self._warm_up_pending:
            self._warm_up_pending = False
            QTimer.singleShot(0, self._start_warm_up)

    def _start_warm_up(self) -> None:
        self.pool.call(warm_up, self._on_warmed_up, self._on_warm_up_failed)

    @Slot(object)
    def _on_warmed_up(self, missing: list[str]) -> None:
        """What the first run imports is imported: its objects are start-up objects too."""
        self.freeze_startup_objects("warm-up")

    @Slot(str)
    def _on_warm_up_failed(self, message: str) -> None:
        self.log.log("warning", f"could not prepare the first run: {message}")

    def freeze_startup_objects(self, stage: str = "window") -> None:
        """The objects of start-up (imports, widgets) are never garbage: keep them out of
        the GUI thread's full collections (see :mod:`gui.gc_guard`)."""
        from PySide6.QtWidgets import QApplication

        guard = getattr(QApplication.instance(), "_main_thread_gc", None)
        if guard is not None:
            guard.freeze(stage)

    # ======================================================================== construction
    def _build_widgets(self) -> None:
        self.images = ImagesPanel()
        self.images_dock = self._dock("Images", "dock_images", self.images, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.panel = ExperimentPanel()
        self.experiment_dock = self._dock("Experiment", "dock_experiment", self.panel,
                                          Qt.DockWidgetArea.RightDockWidgetArea)
        self.inspector = Inspector()
        self.curves = LiveCurves()
        top = QSplitter(Qt.Orientation.Horizontal)
        top.setObjectName("top_splitter")
        top.addWidget(self.inspector)
        top.addWidget(self.curves)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)

        self.results = ResultsView(self.settings)
        self.model, self.proxy, self.table = self.results.model, self.results.proxy, self.results.table
        self.exp_combo, self.filter, self.rows_label = self.results.combo, self.results.filter, self.results.rows_label
        self.gain_plot = GainPerDefencePlot()
        self.quality_plot = QualityGainPlot()
        self.log = LogPanel()
        self.tabs = QTabWidget()
        self.tabs.setObjectName("bottom_tabs")
        self.tabs.addTab(self.results, "Results")
        self.tabs.addTab(self.gain_plot, "Gain per defence")
        self.tabs.addTab(self.quality_plot, "Quality vs gain")
        self.leaderboard = LeaderboardPanel()
        self.tabs.addTab(self.leaderboard, "Leaderboard")
        self.tabs.addTab(self.log, "Log")

        central = QSplitter(Qt.Orientation.Vertical)
        central.setObjectName("central_splitter")
        central.addWidget(top)
        central.addWidget(self.tabs)
        central.setStretchFactor(0, 3)
        central.setStretchFactor(1, 2)
        self.setCentralWidget(central)
        self.top_splitter, self.central_splitter = top, central

        self.status_run = ElidedLabel("ready", min_width=80, max_hint=2000)
        self.status_store = ElidedLabel("no store", min_width=80, max_hint=420)   # a long path never widens
        self.statusBar().addWidget(self.status_run, 1)
        self.statusBar().addPermanentWidget(self.status_store)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        """A movable, floatable (not closable) dock holding ``widget``."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _wire(self) -> None:
        s = self.session
        # widgets → session
        self.images.controlled = True
        self.images.folderChosen.connect(self._on_folder_requested)
        self.images.imageActivated.connect(self.display.show_image)
        self.images.sampleRequested.connect(self.load_samples)
        self.images.bannerDismissed.connect(self._on_banner_dismissed)
        self.panel.runRequested.connect(self.start_run)
        self.panel.cancelRequested.connect(self.cancel_run)
        self.panel.options.outputEdited.connect(s.choose_output)
        self.results.experimentChosen.connect(s.choose_experiment)
        self.results.rowChosen.connect(self._on_row_chosen)
        self.log.countsChanged.connect(self._on_log_errors)
        # session → widgets
        self.sync = PanelSync(self)

    @Slot(str, str)
    def _on_row_chosen(self, item_id: str, defence: str) -> None:
        self.display.show_item(item_id, defence or None)

    # ======================================================================== state shortcuts
    @property
    def store_path(self) -> Path | None:
        return self.session.store_path

    @property
    def exp_id(self) -> str | None:
        return self.session.exp_id

    @property
    def experiment(self) -> Any:
        return self.session.experiment

    @property
    def run_count(self) -> int:
        return self.runs.run_count

    def show_item(self, item_id: str, defence: str | None = None) -> bool:
        return self.display.show_item(item_id, defence)

    # ======================================================================== settings
    def _restore_settings(self) -> None:
        restore_window(self)

    def _default_splits(self) -> None:
        narrow = self.width() < 1200   # e.g. 1024×768 laptops: the centre keeps its room
        self.resizeDocks([self.images_dock, self.experiment_dock], [180, 290] if narrow else [230, 340],
                         Qt.Orientation.Horizontal)
        w = max(400, self.centralWidget().width())
        h = max(400, self.centralWidget().height())
        share = 0.66 if narrow else 0.56   # the inspector first when room is short
        self.top_splitter.setSizes([int(w * share), w - int(w * share)])
        self.central_splitter.setSizes([int(h * 0.58), h - int(h * 0.58)])

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._needs_default_splits:
            self._needs_default_splits = False
            QTimer.singleShot(0, self._default_splits)

    def reset_layout(self) -> None:
        for dock, area in ((self.images_dock, Qt.DockWidgetArea.LeftDockWidgetArea),
                           (self.experiment_dock, Qt.DockWidgetArea.RightDockWidgetArea)):
            dock.setFloating(False)
            self.addDockWidget(area, dock)
            dock.show()
        self._default_splits()

    def save_settings(self) -> None:
        save_window(self)

    # ======================================================================== folders, stores
    def rescan_metrics(self) -> BackgroundCall:
        return self.pool.call(scan_metrics, self.show_metrics, self._on_metrics_failed)

    @Slot(object)
    def show_metrics(self, entries: list[dict[str, Any]]) -> None:
        """The metric scan's answer (it imported the metric libraries: their objects are
        start-up objects too)."""
        self.panel.set_metrics(entries)
        self.freeze_startup_objects("metric scan")

    @Slot(str)
    def _on_metrics_failed(self, message: str) -> None:
        self.panel.metrics_failed(message)
        self.log.log("error", f"could not list the metrics: {message}")

    @Slot(str)
    def _on_folder_requested(self, folder: str) -> None:
        self.open_folder(folder, self.images.requested_images)

    def open_folder(self, folder: str, images: list[str] | None = None) -> bool:
        """Study ``folder``: every panel switches to it (and to its stored results, if any)."""
        return self.session.open_folder(folder, images)

    def choose_store(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        start = str(self.store_path.parent) if self.store_path else self.session.output_dir
        path, _ = QFileDialog.getOpenFileName(self, "Open a result store", start,
                                              "Result stores (*.sqlite *.db);;All files (*)")
        if path:
            self.open_store(path)

    def open_store(self, path: str | Path, exp_id: str | None = None) -> bool:
        """Show a store's results (latest experiment by default) without recomputing."""
        ok = self.session.open_store(path, exp_id)
        if ok:
            self.settings.setValue("lastStore", str(path))
        return ok

    def load_study(self, name: str) -> None:
        """Run → Load study: the study's attacks, defences and budget in the panel."""
        from engine.spec.studies import StudyError
        from gui.study_menu import apply_study

        try:
            skipped = apply_study(self.panel, name)
        except StudyError as exc:
            self.log.log("error", str(exc))
            return
        self.log.log("info", f"study {name}: its attacks and defences are ticked; it runs on the ticked metric(s)")
        if skipped:
            self.log.log("warning", f"study {name}: not shown in the panel: {', '.join(skipped)}")

    def load_samples(self) -> None:
        """Open the bundled sample photos and set the quick default experiment."""
        if not SAMPLES_DIR.is_dir():
            self.log.log("error", f"sample folder missing: {SAMPLES_DIR}")
            return
        self.panel.set_state(dict(DEFAULT_EXPERIMENT))
        self.session.choose_output(None)
        self.open_folder(str(SAMPLES_DIR))
        self._on_banner_dismissed()
        self.log.log("info", "sample photos loaded with the default experiment")

    @Slot()
    def _on_banner_dismissed(self) -> None:
        self.images.show_banner(False)
        self.settings.setValue("firstLaunchDone", "true")

    # ======================================================================== running
    @Slot()
    def start_run(self) -> bool:
        return self.runs.start()

    @Slot()
    def cancel_run(self) -> None:
        self.runs.cancel()

    # ======================================================================== export (File menu)
    def export_csv(self, folder: str | Path) -> tuple[Path, Path] | None:
        return self.files.export_csv(folder)

    def save_shown_images(self, folder: str | Path) -> list[Path]:
        return self.files.save_shown_images(folder)

    def build_report(self, folder: str | Path) -> BackgroundCall | None:
        return self.files.build_report(folder)

    # ======================================================================== misc
    @Slot(int)
    def _on_log_errors(self, n: int) -> None:
        self.tabs.setTabText(self.tabs.indexOf(self.log), f"Log ({n} error{'s' if n != 1 else ''})" if n else "Log")

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.controller.running:
            # Cancel (the worker stops after the attack step in flight) and hide at once; the
            # window closes for good when the worker has stopped, after the store's last
            # commit (finished items are kept).
            self.save_settings()
            self.runs.close_after_run()
            self.hide()
            event.ignore()
            return
        if not self._closing:
            self._closing = True
            self.tools.stop_training(120_000)
            self.save_settings()
            for pool in (self.pool, self.inspector.pool):
                pool.wait(30_000)
            self.leaderboard.wait()
            self.log_bridge.uninstall()
        event.accept()

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Cancel any run or training and wait for them (application exit)."""
        self.tools.stop_training(timeout_ms)
        if self.controller.running:
            self.controller.cancel()
            self.controller.wait(timeout_ms)
