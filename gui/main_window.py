"""The main window: images, experiment, live curves, inspector, results, log.

All engine work happens in :class:`gui.worker.RunWorker` on its own thread; this window
only receives its events (queued signals into the slots below) and numpy images.
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths, Qt, QTimer, Slot
from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.events import (
    AttackDone,
    AttackStep,
    CleanScored,
    DefenceDone,
    ItemFailed,
    ItemFinished,
    ItemStarted,
    RunFinished,
    RunStarted,
)
from engine.experiment import Experiment
from gui.aggregate_plots import GainPerDefencePlot, QualityGainPlot
from gui.catalog import scan_metrics
from gui.curves import LiveCurves
from gui.experiment_panel import DEFAULT_EXPERIMENT, ExperimentPanel
from gui.image_cache import ImageCache, from_event_images, from_store
from gui.images_panel import ImagesPanel
from gui.inspector import Inspector
from gui.log_panel import LogBridge, LogPanel
from gui.results_model import ResultsModel, ResultsProxy
from gui.training_dialog import FCNTrainDialog
from gui.worker import BackgroundCall, RunWorker, WorkerThread

APP_NAME = "IQA Purification Lab"
ORG_NAME = "iqa-lab"
SAMPLES_DIR = Path(__file__).resolve().parents[1] / "resources" / "samples"
STORE_NAME = "results.sqlite"


def default_output_dir(folder: str | None) -> str:
    """``<user data>/iqa-lab/runs/<folder name>`` (never inside the image folder)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation) \
        or str(Path.home() / ".local" / "share")
    name = Path(folder).name if folder else "untitled"
    return str(Path(base) / "iqa-lab" / "runs" / name)


def _settings_json(settings: QSettings, key: str) -> Any:
    raw = settings.value(key)
    if not raw:
        return None
    try:
        return json.loads(str(raw))
    except ValueError:
        return None


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

        self.controller = WorkerThread(self, "engine-run")
        self.controller.stopped.connect(self._on_controller_stopped)
        self.cache = ImageCache()
        self.experiment: Experiment | None = None
        self.store_path: Path | None = None
        self.exp_id: str | None = None
        self.items: dict[str, dict[str, Any]] = {}          # item_id → path, image_name, metric, attack
        self.steps: dict[str, dict[str, list[tuple[int, float]]]] = {}
        self.clean_scores: dict[str, float] = {}
        self._image_remaining: dict[str, int] = {}
        self._image_failed: dict[str, list[str]] = defaultdict(list)
        self._iters: dict[str, int] = {}
        self._current_item: str | None = None
        self._defences_done = 0
        self._close_after_run = False
        self._closing = False
        self._bg: list[BackgroundCall] = []
        self.run_count = 0
        self._needs_default_splits = False
        self._columns_sized = False
        self._follow_item: str | None = None
        self._done_before = 0
        self.fcn_dialog: FCNTrainDialog | None = None
        self._shown_request: tuple[Any, ...] | None = None  # what the inspector waits for

        self._build_widgets()
        self._build_menus()
        self._restore_settings()
        self.log_bridge = LogBridge(self)
        self.log_bridge.message.connect(self.log.log)
        self.log_bridge.install()
        if scan:
            self.rescan_metrics()

    # ======================================================================== construction
    def _build_widgets(self) -> None:
        self.images = ImagesPanel()
        self.images.folderChosen.connect(self._on_folder_chosen)
        self.images.imageActivated.connect(self._on_image_activated)
        self.images.sampleRequested.connect(self.load_samples)
        self.images.bannerDismissed.connect(self._on_banner_dismissed)
        self.images_dock = self._dock("Images", "dock_images", self.images, Qt.DockWidgetArea.LeftDockWidgetArea)

        self.panel = ExperimentPanel()
        self.panel.runRequested.connect(self.start_run)
        self.panel.cancelRequested.connect(self.cancel_run)
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

        # results
        self.model = ResultsModel(self)
        self.proxy = ResultsProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setObjectName("results_table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setDefaultSectionSize(92)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_row)
        results = QWidget()
        rl = QVBoxLayout(results)
        rl.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("experiment"))
        self.exp_combo = QComboBox()
        self.exp_combo.setObjectName("experiment_combo")
        self.exp_combo.setMinimumContentsLength(28)
        self.exp_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.exp_combo.activated.connect(self._on_exp_combo)
        bar.addWidget(self.exp_combo, 2)
        bar.addWidget(QLabel("filter"))
        self.filter = QLineEdit()
        self.filter.setObjectName("results_filter")
        self.filter.setPlaceholderText("text in any column, e.g. jpeg or astronaut")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        bar.addWidget(self.filter, 3)
        self.rows_label = QLabel("0 rows")
        self.rows_label.setObjectName("rows_label")
        bar.addWidget(self.rows_label)
        rl.addLayout(bar)
        rl.addWidget(self.table, 1)

        self.gain_plot = GainPerDefencePlot()
        self.quality_plot = QualityGainPlot()
        self.log = LogPanel()
        self.log.countsChanged.connect(self._on_log_errors)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("bottom_tabs")
        self.tabs.addTab(results, "Results")
        self.tabs.addTab(self.gain_plot, "Gain per defence")
        self.tabs.addTab(self.quality_plot, "Quality vs gain")
        self.tabs.addTab(self.log, "Log")

        central = QSplitter(Qt.Orientation.Vertical)
        central.setObjectName("central_splitter")
        central.addWidget(top)
        central.addWidget(self.tabs)
        central.setStretchFactor(0, 3)
        central.setStretchFactor(1, 2)
        self.setCentralWidget(central)
        self.top_splitter, self.central_splitter = top, central

        self.status_run = QLabel("ready")
        self.status_store = QLabel("no store")
        self.status_store.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
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

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        a = m.addAction("Open folder…", self.images.choose_folder)
        a.setShortcut(QKeySequence.StandardKey.Open)
        m.addAction("Open sample folder", self.load_samples)
        m.addAction("Open store…", self.choose_store)
        m.addSeparator()
        self.export_action = m.addAction("Export CSV…", self.choose_export_csv)
        self.save_images_action = m.addAction("Save shown images…", self.choose_save_images)
        self.report_action = m.addAction("Report…", self.choose_report)
        m.addSeparator()
        a = m.addAction("Quit", self.close)
        a.setShortcut(QKeySequence.StandardKey.Quit)
        r = self.menuBar().addMenu("&Run")
        self.run_action = r.addAction("Run", self.start_run)
        self.run_action.setShortcut(QKeySequence("Ctrl+R"))
        self.cancel_action = r.addAction("Cancel", self.cancel_run)
        self.cancel_action.setShortcut(QKeySequence("Ctrl+."))
        self.cancel_action.setEnabled(False)
        t = self.menuBar().addMenu("&Tools")
        self.train_fcn_action = t.addAction("Train FCN filter…", self.open_fcn_training)
        v = self.menuBar().addMenu("&View")
        v.addAction(self.images_dock.toggleViewAction())
        v.addAction(self.experiment_dock.toggleViewAction())
        v.addAction("Reset layout", self.reset_layout)
        h = self.menuBar().addMenu("&Help")
        h.addAction("About", self._about)

    # ======================================================================== settings
    def _restore_settings(self) -> None:
        s = self.settings
        self.images.recent = [str(f) for f in (_settings_json(s, "recentFolders") or []) if Path(str(f)).is_dir()]
        self.images._update_recent_menu()
        state = _settings_json(s, "lastExperiment")
        if isinstance(state, dict):
            self.panel.set_state(state)
        geo = s.value("geometry")
        if isinstance(geo, (QByteArray, bytes)) and geo:
            self.restoreGeometry(geo)
        else:
            self.resize(1280, 800)
            self._needs_default_splits = True
        st = s.value("windowState")
        if isinstance(st, (QByteArray, bytes)) and st:
            self.restoreState(st)
        for key, splitter in (("topSplitter", self.top_splitter), ("centralSplitter", self.central_splitter)):
            v = s.value(key)
            if isinstance(v, (QByteArray, bytes)) and v:
                splitter.restoreState(v)
        last = s.value("lastFolder")
        if last and Path(str(last)).is_dir():
            self.images.set_folder(str(last))
        first_done = str(s.value("firstLaunchDone", "false")).lower() == "true"
        self.images.show_banner(not first_done and SAMPLES_DIR.is_dir())

    def _default_splits(self) -> None:
        self.resizeDocks([self.images_dock, self.experiment_dock], [230, 340], Qt.Orientation.Horizontal)
        w = max(400, self.centralWidget().width())
        h = max(400, self.centralWidget().height())
        self.top_splitter.setSizes([int(w * 0.56), w - int(w * 0.56)])
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
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("windowState", self.saveState())
        s.setValue("topSplitter", self.top_splitter.saveState())
        s.setValue("centralSplitter", self.central_splitter.saveState())
        if self.images.folder:
            s.setValue("lastFolder", self.images.folder)
        s.setValue("recentFolders", json.dumps(self.images.recent))
        s.setValue("lastExperiment", json.dumps(self.panel.state()))
        if self.store_path is not None:
            s.setValue("lastStore", str(self.store_path))
        s.sync()

    # ======================================================================== metrics
    def _background(self, fn: Callable[[], Any], on_result: Callable[[Any], None],
                    on_error: Callable[[str], None]) -> BackgroundCall:
        """Run ``fn()`` off the GUI thread; its result or error goes to the two methods
        (of GUI-thread objects), and the call is kept alive until then."""
        call = BackgroundCall(fn, self)
        call.finished.connect(on_result)
        call.failed.connect(on_error)
        call.finished.connect(self._forget_background)
        call.failed.connect(self._forget_background)
        self._bg.append(call)
        return call.start()

    def rescan_metrics(self) -> BackgroundCall:
        return self._background(scan_metrics, self.panel.set_metrics, self._on_metrics_failed)

    @Slot(str)
    def _on_metrics_failed(self, message: str) -> None:
        self.panel.metrics_failed(message)
        self.log.log("error", f"could not list the metrics: {message}")

    @Slot()
    def _forget_background(self, *_: Any) -> None:
        self._bg = [b for b in self._bg if b.running]

    # ======================================================================== folders
    @Slot(str)
    def _on_folder_chosen(self, folder: str) -> None:
        if not self.panel.output.text() or self.panel.output.property("auto"):
            self.panel.output.setText(default_output_dir(folder))
            self.panel.output.setProperty("auto", True)
        self.settings.setValue("lastFolder", folder)
        self.settings.setValue("recentFolders", json.dumps(self.images.recent))

    def load_samples(self) -> None:
        """Open the bundled sample photos and set the quick default experiment."""
        if not SAMPLES_DIR.is_dir():
            self.log.log("error", f"sample folder missing: {SAMPLES_DIR}")
            return
        self.images.set_folder(str(SAMPLES_DIR))
        state = dict(DEFAULT_EXPERIMENT)
        state["output"] = default_output_dir(str(SAMPLES_DIR))
        self.panel.set_state(state)
        self.panel.output.setProperty("auto", True)
        self._on_banner_dismissed()
        self.log.log("info", "sample photos loaded with the default experiment: press Run")

    @Slot()
    def _on_banner_dismissed(self) -> None:
        self.images.show_banner(False)
        self.settings.setValue("firstLaunchDone", "true")

    # ======================================================================== running
    @Slot()
    def start_run(self) -> None:
        if self.controller.running:
            return
        try:
            exp = self.panel.build_experiment(self.images.paths(), self.images.folder)
        except (ValueError, KeyError) as exc:
            self.log.log("error", f"cannot start: {exc}")
            self.status_run.setText(f"cannot start: {exc}")
            return
        out = Path(self.panel.output.text() or default_output_dir(self.images.folder))
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.log.log("error", f"cannot create the output folder {out}: {exc}")
            return
        from engine.runner import store_path_for

        self.experiment = exp
        self.store_path = store_path_for(out)
        self.exp_id = exp.id
        self._prepare_tracking(exp)
        self.images.reset_status()
        self.panel.set_running(True)
        self.run_action.setEnabled(False)
        self.cancel_action.setEnabled(True)
        self.status_store.setText(str(self.store_path))
        self.run_count += 1
        self.log.log("info", f"run {exp.id[:8]}: {len(exp.images)} image(s) × {len(exp.metrics)} metric(s) × "
                             f"{len(exp.attacks)} attack(s) × {len(exp.all_defences)} defence(s) → {self.store_path}")
        self._load_store_rows(exp.id, select=False)
        self.controller.start(RunWorker(exp, self.store_path), self._connect_worker)

    def _connect_worker(self, w: RunWorker) -> None:
        # Bound methods of this GUI-thread object: queued, they run in the GUI thread.
        w.runStarted.connect(self.on_run_started)
        w.itemStarted.connect(self.on_item_started)
        w.cleanScored.connect(self.on_clean_scored)
        w.attackStep.connect(self.on_attack_step)
        w.attackDone.connect(self.on_attack_done)
        w.defenceDone.connect(self.on_defence_done)
        w.itemFinished.connect(self.on_item_finished)
        w.itemFailed.connect(self.on_item_failed)
        w.runFinished.connect(self.on_run_finished)
        w.runError.connect(self.on_run_error)
        w.done.connect(self.on_worker_done)

    def _prepare_tracking(self, exp: Experiment) -> None:
        from engine.attacks import ATTACKS
        from engine.runtime import merged_params

        self.items.clear()
        self.steps.clear()
        self.clean_scores.clear()
        self._image_remaining = defaultdict(int)
        self._image_failed = defaultdict(list)
        self._iters.clear()
        for it in exp.items():
            self.items[it.id] = {"image": it.image, "image_name": it.image_name, "metric": it.metric.label,
                                 "attack": it.attack.label}
            self._image_remaining[it.image] += 1
        for spec in exp.attacks:
            try:
                cls = ATTACKS.get(spec.name)
                params = {s.name: s.default for s in cls.param_specs()}
                params.update(merged_params(cls, spec))
                self._iters[spec.label] = int(params.get("iters", 1) or 1)
            except Exception:  # noqa: BLE001 - progress just gets coarser
                self._iters[spec.label] = 1

    @Slot()
    def cancel_run(self) -> None:
        if self.controller.running:
            self.controller.cancel()
            self.status_run.setText("cancelling after the current attack step…")
            self.log.log("warning", "cancel requested: stopping after the current attack step")

    @Slot(object)
    def on_run_started(self, ev: RunStarted) -> None:
        self.panel.start_progress(ev.pending, ev.total)
        done_before = ev.total - ev.pending
        self._done_before = done_before
        self.status_run.setText(f"running on {ev.device}: {ev.pending} item(s) to compute"
                                + (f", {done_before} already in the store" if done_before else ""))
        if done_before and self.store_path is not None:
            self._mark_done_from_store()

    @Slot(object)
    def on_item_started(self, ev: ItemStarted) -> None:
        it = ev.item
        self._current_item = it.id
        self._defences_done = 0
        self.images.set_status(it.image, "running")
        self.curves.begin(it.image_name, it.metric.label, self.panel.lower_better(it.metric.label))
        self.status_run.setText(f"[{ev.position}/{ev.pending}] {it.image_name} · {it.metric.label} · {it.attack.label}")
        self.panel.update_progress(fraction_in_item=0.0)

    @Slot(object)
    def on_clean_scored(self, ev: CleanScored) -> None:
        self.clean_scores[ev.item_id] = ev.score
        self.curves.set_clean(ev.score)

    @Slot(object)
    def on_attack_step(self, ev: AttackStep) -> None:
        self.curves.add_point(ev.attack, ev.step.iteration, ev.step.score)
        self.steps.setdefault(ev.item_id, {}).setdefault(ev.attack, []).append((ev.step.iteration, ev.step.score))
        n = self._iters.get(ev.attack, 1)
        self.panel.update_progress(fraction_in_item=0.85 * min(1.0, (ev.step.iteration + 1) / (n + 1)))

    @Slot(object)
    def on_attack_done(self, ev: AttackDone) -> None:
        self.panel.update_progress(fraction_in_item=0.85)

    @Slot(object)
    def on_defence_done(self, ev: DefenceDone) -> None:
        self._defences_done += 1
        n = len(self.experiment.all_defences) if self.experiment else 1
        self.panel.update_progress(fraction_in_item=0.85 + 0.15 * self._defences_done / max(1, n))
        if ev.row.get("error"):
            self.log.log("error", f"{ev.row.get('image_name')}: defence {ev.defence}: {ev.row['error']}")

    @Slot(object)
    def on_item_finished(self, ev: ItemFinished) -> None:
        it = ev.item
        self.model.add_rows(ev.rows)
        self._rows_changed()
        if ev.images is not None:
            self.cache.put(it.id, from_event_images(self._title(it.image_name, it.metric.label, it.attack.label),
                                                    ev.images, ev.rows[0].get("note", "") if ev.rows else ""))
        self._image_item_ended(it.image)
        self.panel.update_progress(finished=self.panel.tracker.finished + 1, fraction_in_item=0.0)
        if self.inspector.follow.isChecked() and it.id in self.cache:
            # next event-loop turn: keeps each slot short so the GUI never stalls
            self._follow_item = it.id
            QTimer.singleShot(0, self._show_followed)

    @Slot(object)
    def on_item_failed(self, ev: ItemFailed) -> None:
        it = ev.item
        msg = ev.error.strip().splitlines()[0] if ev.error.strip() else "failed"
        self._image_failed[it.image].append(f"[{ev.stage}] {msg}")
        self.log.log("error", f"{it.image_name} · {it.metric.label} · {it.attack.label}: [{ev.stage}] {msg}")
        self.model.add_rows([{"image_name": it.image_name, "metric": it.metric.label, "attack": it.attack.name,
                              "attack_preset": it.attack.preset_label, "item_id": it.id,
                              "error": f"[{ev.stage}] {msg}"}])
        self._rows_changed()
        self._image_item_ended(it.image)
        self.panel.update_progress(finished=self.panel.tracker.finished + 1, fraction_in_item=0.0)

    @Slot()
    def _show_followed(self) -> None:
        if self._follow_item is not None:
            self.show_item(self._follow_item)
            self._follow_item = None

    def _image_item_ended(self, image: str) -> None:
        self._image_remaining[image] = max(0, self._image_remaining.get(image, 1) - 1)
        errors = self._image_failed.get(image)
        if errors:
            self.images.set_status(image, "error", "\n".join(errors))
        elif self._image_remaining[image] == 0:
            self.images.set_status(image, "done")

    @Slot(object)
    def on_run_finished(self, ev: RunFinished) -> None:
        state = "cancelled" if ev.cancelled else "finished"
        before = getattr(self, "_done_before", 0)
        text = (f"{state}: {ev.finished} item(s) done, {ev.failed} failed in {ev.seconds:.1f} s"
                + (f"; {before} item(s) were already in the store" if before else ""))
        self.panel.finish_progress(("cancelled · " if ev.cancelled else "")
                                   + f"{ev.finished} done · {ev.failed} failed · {ev.seconds:.0f} s"
                                   + (f" · {before} stored before" if before else ""))
        self.status_run.setText(text)
        self.log.log("warning" if ev.cancelled else ("error" if ev.failed else "ok"), f"run {state}: {text}")
        for path in self._image_remaining:
            if self.images.status(path) == "running":
                self.images.set_status(path, "pending")
        self._refresh_experiments()

    @Slot(str)
    def on_run_error(self, message: str) -> None:
        self.log.log("error", f"the run stopped: {message}")

    @Slot()
    def on_worker_done(self) -> None:
        self.panel.set_running(False)
        self.run_action.setEnabled(True)
        self.cancel_action.setEnabled(False)
        self._current_item = None

    @Slot()
    def _on_controller_stopped(self) -> None:
        if self._close_after_run:
            self._close_after_run = False
            self.close()

    def _mark_done_from_store(self) -> None:
        """Items finished by an earlier run of the same experiment count as done."""
        from engine.store import ResultStore

        try:
            with ResultStore(self.store_path, readonly=True) as store:
                items = store.items(self.exp_id)
        except Exception:  # noqa: BLE001
            return
        for item in items:
            if item["item_id"] in self.items and item["status"] == "done":
                self.steps[item["item_id"]] = _series(item)
                self._image_item_ended(item["image"])

    # ======================================================================== results
    def _rows_changed(self) -> None:
        self.rows_label.setText(f"{self.model.rowCount()} rows")
        self.gain_plot.set_rows(self.model.rows)
        self.quality_plot.set_rows(self.model.rows)
        if not self._columns_sized and self.model.rowCount():
            # once, from the first rows: sizing every column on every item costs ~50 ms
            self._columns_sized = True
            QTimer.singleShot(0, self._size_columns)

    def _size_columns(self) -> None:
        """Widths from the header and the first rows' text (cheap, unlike resizeColumnsToContents)."""
        header = self.table.horizontalHeader()
        fm = self.table.fontMetrics()
        sample = self.model.rows[:12]
        for c, name in enumerate(self.model.columns):
            texts = [name] + [self.model.data(self.model.index(r, c)) or "" for r in range(len(sample))]
            w = max(fm.horizontalAdvance(str(t)) for t in texts) + 24
            header.resizeSection(c, max(56, min(w, 220)))

    @staticmethod
    def _title(image_name: str, metric: str, attack: str) -> str:
        return f"<b>{image_name}</b> · {metric} · {attack}"

    @Slot(object, object)
    def _on_table_row(self, current: Any, _previous: Any = None) -> None:
        if not current.isValid():
            return
        row = self.model.row(self.proxy.mapToSource(current).row())
        item_id = row.get("item_id")
        if item_id:
            self.show_item(item_id, row.get("defence_label"))

    @Slot(str)
    def _on_image_activated(self, path: str) -> None:
        candidates = [iid for iid, it in self.items.items() if it["image"] == path]
        for iid in reversed(candidates):
            if iid in self.cache or self._stored(iid):
                self.show_item(iid)
                return
        from gui.image_cache import read_rgb

        self._shown_request = ("file", path)
        self._background(lambda: (("file", path), read_rgb(path)), self._on_images_read, self._on_images_failed)
        err = self.images.error(path)
        if err:
            self.status_run.setText(f"{Path(path).name}: {err.splitlines()[0]}")

    def _stored(self, item_id: str) -> bool:
        return any(r.get("item_id") == item_id and not r.get("error") for r in self.model.rows)

    def show_item(self, item_id: str, defence: str | None = None) -> bool:
        """Show an item in the inspector and its recorded curve; False if unknown.

        Images of a finished run are in memory; a stored item's PNGs are read in a
        background call first and shown when they arrive (unless another item was asked
        for meanwhile)."""
        images = self.cache.get(item_id)
        if images is not None:
            self._show_item_images(item_id, images, defence)
            return True
        info = self.items.get(item_id)
        if self.store_path is None or self.exp_id is None or info is None:
            return False
        from engine.store import ResultStore

        labels = sorted({r.get("defence_label") or r.get("defence") for r in self.model.rows
                         if r.get("item_id") == item_id and not r.get("error")} - {None})
        store_path, exp_id = self.store_path, self.exp_id
        item = {"item_id": item_id, "image": info["image"]}
        title = self._title(info["image_name"], info["metric"], info["attack"])
        key = ("item", item_id, defence)

        def read() -> tuple[tuple[Any, ...], Any]:
            with ResultStore(store_path, readonly=True) as store:
                return key, from_store(store, exp_id, item, labels, title)

        self._shown_request = key
        self._background(read, self._on_images_read, self._on_images_failed)
        return True

    @Slot(object)
    def _on_images_read(self, result: tuple[tuple[Any, ...], Any]) -> None:
        key, images = result
        if key[0] == "item" and images.attacked is not None:
            self.cache.put(key[1], images)
        if key != self._shown_request:
            return  # the user has moved on
        self._shown_request = None
        if key[0] == "item":
            self._show_item_images(key[1], images, key[2])
        elif images is not None:
            from gui.inspector import InspectorImages

            self.inspector.show_images(InspectorImages(f"<b>{Path(key[1]).name}</b> (not run yet)", images, None))

    @Slot(str)
    def _on_images_failed(self, message: str) -> None:
        self._shown_request = None
        self.log.log("error", f"cannot read the images: {message}")

    def _show_item_images(self, item_id: str, images: Any, defence: str | None) -> None:
        info = self.items.get(item_id)
        rows = {(r.get("defence_label") or r.get("defence")): r for r in self.model.rows
                if r.get("item_id") == item_id and (r.get("defence_label") or r.get("defence"))}
        self.inspector.show_images(images, defence, rows)
        if info is not None:
            self.images.select_path(info["image"])
            if not self.controller.running and item_id in self.steps:
                self.curves.show_steps(info["image_name"], info["metric"], self.clean_scores.get(item_id),
                                       self.steps[item_id])

    # ======================================================================== stores
    def choose_store(self) -> None:
        start = str(self.store_path.parent) if self.store_path else self.panel.output.text() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a result store", start,
                                              "Result stores (*.sqlite *.db);;All files (*)")
        if path:
            self.open_store(path)

    def open_store(self, path: str | Path, exp_id: str | None = None) -> bool:
        """Show a store's results (latest experiment by default) without recomputing."""
        if self.controller.running:
            self.log.log("warning", "a run is in progress: open the store when it has finished")
            return False
        from engine.store import ResultStore, StoreError

        path = Path(path)
        try:
            with ResultStore(path, readonly=True) as store:
                exp_id = store.resolve(exp_id)
                exp = store.experiment(exp_id)
        except (StoreError, OSError, ValueError) as exc:
            self.log.log("error", f"cannot open store {path}: {exc}")
            return False
        self.store_path = path
        self.exp_id = exp_id
        self.experiment = exp
        self.cache.clear()
        self._prepare_tracking(exp)
        folder = exp.root or (str(Path(exp.images[0]).parent) if exp.images else None)
        if folder and Path(folder).is_dir():
            present = [p for p in exp.images if Path(p).exists()]
            self.images.set_folder(folder, present if len(present) == len(exp.images) else exp.images)
        self.panel.set_state({
            "metrics": [m.name for m in exp.metrics],
            "attacks": _component_state(exp.attacks), "defences": _component_state(exp.defences),
            "seed": exp.seed, "device": exp.device, "save_images": exp.save_images, "adaptive": exp.adaptive,
            "output": str(path.parent)})
        self.status_store.setText(str(path))
        n = self._load_store_rows(exp_id, select=True)
        self._refresh_experiments()
        self.log.log("info", f"opened store {path}: experiment {exp_id[:8]}, {n} row(s)")
        self.settings.setValue("lastStore", str(path))
        return True

    def _load_store_rows(self, exp_id: str, select: bool) -> int:
        """Rows, statuses and curves of ``exp_id`` already in the store (none for a new store)."""
        from engine.store import ResultStore

        self.model.clear()
        self._columns_sized = False
        if self.store_path is None or not Path(self.store_path).exists():
            self._rows_changed()
            return 0
        try:
            with ResultStore(self.store_path, readonly=True) as store:
                known = {e["id"] for e in store.experiments()}
                if exp_id not in known:
                    self._rows_changed()
                    return 0
                rows = store.rows(exp_id)
                items = store.items(exp_id)
        except Exception as exc:  # noqa: BLE001
            self.log.log("error", f"cannot read {self.store_path}: {exc}")
            return 0
        failures = []
        for item in items:
            iid = item["item_id"]
            self.items.setdefault(iid, {"image": item["image"], "image_name": item["image_name"],
                                        "metric": item["metric"], "attack": item["attack"]})
            if item["status"] == "done":
                self.steps[iid] = _series(item)
                if item.get("clean_score") is not None:
                    self.clean_scores[iid] = item["clean_score"]
            else:
                failures.append({"image_name": item["image_name"], "metric": item["metric"],
                                 "attack": item["attack"], "item_id": iid,
                                 "error": f"[{item.get('stage') or ''}] {item.get('error') or ''}"})
            if not self.controller.running:
                status = "done" if item["status"] == "done" else "error"
                self.images.set_status(item["image"], status, "" if status == "done" else (item.get("error") or ""))
        self.model.set_rows(rows + failures)
        self._rows_changed()
        if select and rows:
            self.table.selectRow(0)
            first = rows[0].get("item_id")
            if first:
                self.show_item(first, rows[0].get("defence_label"))
        return len(rows)

    def _refresh_experiments(self) -> None:
        from engine.store import ResultStore

        self.exp_combo.blockSignals(True)
        self.exp_combo.clear()
        if self.store_path is not None and Path(self.store_path).exists():
            try:
                with ResultStore(self.store_path, readonly=True) as store:
                    exps = store.experiments()
            except Exception:  # noqa: BLE001
                exps = []
            for e in reversed(exps):
                spec = e["spec"]
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e["created"]))
                desc = ", ".join(m["name"] for m in spec.get("metrics", [])) + " · " + \
                    ", ".join(a["name"] for a in spec.get("attacks", []))
                self.exp_combo.addItem(f"{e['id'][:8]}  {when}  {desc}  ({e['done']}/{e['total']} done)", e["id"])
            idx = self.exp_combo.findData(self.exp_id)
            self.exp_combo.setCurrentIndex(max(0, idx))
        self.exp_combo.blockSignals(False)

    @Slot(int)
    def _on_exp_combo(self, index: int) -> None:
        exp_id = self.exp_combo.itemData(index)
        if exp_id and exp_id != self.exp_id and self.store_path is not None:
            self.open_store(self.store_path, exp_id)

    # ======================================================================== export
    def _need_store(self) -> bool:
        if self.store_path is None or self.exp_id is None or not Path(self.store_path).exists():
            self.log.log("error", "nothing to export yet: run an experiment or open a store")
            return False
        return True

    def choose_export_csv(self) -> None:
        if not self._need_store():
            return
        folder = QFileDialog.getExistingDirectory(self, "Export CSV to folder", str(self.store_path.parent))
        if folder:
            self.export_csv(folder)

    def export_csv(self, folder: str | Path) -> tuple[Path, Path] | None:
        """Write raw.csv and summary.csv of the shown experiment (as the CLI does)."""
        if not self._need_store():
            return None
        from engine.export import export_csv
        from engine.store import ResultStore

        try:
            with ResultStore(self.store_path, readonly=True) as store:
                raw, summary = export_csv(store, folder, self.exp_id)
        except Exception as exc:  # noqa: BLE001
            self.log.log("error", f"CSV export failed: {exc}")
            return None
        self.log.log("ok", f"exported {raw} and {summary}")
        return raw, summary

    def choose_save_images(self) -> None:
        if not self.inspector.shown_arrays():
            self.log.log("error", "no images shown: pick a row in Results first")
            return
        folder = QFileDialog.getExistingDirectory(self, "Save the shown images to folder",
                                                  str(self.store_path.parent) if self.store_path else str(Path.home()))
        if folder:
            self.save_shown_images(folder)

    def save_shown_images(self, folder: str | Path) -> list[Path]:
        from PIL import Image

        from engine.store import slug

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for name, arr in self.inspector.shown_arrays().items():
            p = folder / f"{slug(name)}.png"
            Image.fromarray(arr).save(p)
            out.append(p)
        self.log.log("ok", f"saved {len(out)} image(s) to {folder}")
        return out

    def choose_report(self) -> None:
        if not self._need_store():
            return
        folder = QFileDialog.getExistingDirectory(self, "Write the report to folder", str(self.store_path.parent))
        if folder:
            self.build_report(folder)

    def build_report(self, folder: str | Path) -> BackgroundCall | None:
        """Build the report (engine.report) in a background thread."""
        if not self._need_store():
            return None
        try:
            from engine.report import build_report
        except ImportError as exc:
            self.log.log("error", f"reports are not available in this installation (engine.report: {exc})")
            return None
        store_path, exp_id = str(self.store_path), self.exp_id
        self.log.log("info", f"building the report in {folder}…")
        return self._background(lambda: build_report(store_path, str(folder), experiment_id=exp_id),
                                self._on_report_done, self._on_report_failed)

    @Slot(object)
    def _on_report_done(self, result: Any) -> None:
        self.log.log("ok", f"report written: {result}")

    @Slot(str)
    def _on_report_failed(self, message: str) -> None:
        self.log.log("error", f"report failed: {message}")

    # ======================================================================== FCN training
    def open_fcn_training(self) -> FCNTrainDialog:
        """Show the FCN training window, offering this window's folder, metrics and output."""
        if self.fcn_dialog is None:
            self.fcn_dialog = FCNTrainDialog(self)
            self.fcn_dialog.useCheckpoint.connect(self.use_fcn_checkpoint)
        ready = [n for n, e in self.panel.metric_info.items() if e.get("state") == "ready"]
        checked = [m for m in self.panel.checked_metrics() if m in ready]
        self.fcn_dialog.prefill(self.images.folder, checked + [m for m in ready if m not in checked],
                                self.panel.output.text().strip() or None)
        self.fcn_dialog.show()
        self.fcn_dialog.raise_()
        return self.fcn_dialog

    @Slot(str)
    def use_fcn_checkpoint(self, path: str) -> None:
        """Tick the ``fcn`` defence with a trained checkpoint."""
        self.panel.defences.set_choice("fcn", checked=True, params={"checkpoint": path})
        self.panel.tabs.setCurrentWidget(self.panel.defences)
        self.panel.defences.select("fcn")
        self.log.log("info", f"fcn defence set to the checkpoint {path}")

    # ======================================================================== misc
    @Slot(int)
    def _on_log_errors(self, n: int) -> None:
        self.tabs.setTabText(self.tabs.indexOf(self.log), f"Log ({n} error{'s' if n != 1 else ''})" if n else "Log")

    def _about(self) -> None:
        self.log.log("info", f"{APP_NAME}: adversarial robustness of no-reference image-quality metrics "
                             "(attacks, purification defences, scores, reports).")

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.controller.running:
            # Cancel, then close when the worker has stopped (finished items are in the store).
            self._close_after_run = True
            self.controller.cancel()
            self.status_run.setText("closing: cancelling the run…")
            self.log.log("warning", "window closed during a run: cancelling, finished results are kept")
            event.ignore()
            return
        if not self._closing:
            self._closing = True
            if self.fcn_dialog is not None and self.fcn_dialog.running:
                self.fcn_dialog.stop()  # stops after the epoch in progress; what is saved stays
                self.fcn_dialog.wait(120_000)
            self.save_settings()
            for call in list(self._bg):
                call.wait(30_000)
            self.log_bridge.uninstall()
        event.accept()

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Cancel any run or training and wait for them (application exit)."""
        if self.fcn_dialog is not None and self.fcn_dialog.running:
            self.fcn_dialog.stop()
            self.fcn_dialog.wait(timeout_ms)
        if self.controller.running:
            self.controller.cancel()
            self.controller.wait(timeout_ms)


def _series(item: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    pts = [(int(s["iteration"]), float(s["score"])) for s in item.get("steps") or []
           if s.get("score") is not None]
    return {item["attack"]: pts} if pts else {}


def _component_state(specs: list[Any]) -> dict[str, Any]:
    """Panel state for a list of component specs (a sweep shows as the 'all presets' choice)."""
    from gui.components import SWEEP

    out: dict[str, Any] = {}
    for s in specs:
        if s.name in out:
            out[s.name]["preset"] = SWEEP
            continue
        out[s.name] = {"checked": True, "preset": s.preset or "", "params": dict(s.params)}
    return out
