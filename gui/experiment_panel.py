"""Experiment panel: metrics, attacks, defences, options, and the Run/Cancel button."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.spec.experiment import Experiment
from gui.catalog import STATE_TEXT, attack_classes, defence_classes
from gui.components import ComponentPicker
from gui.progress import ProgressTracker, format_eta

STATE_COLORS = {"ready": "#188038", "needs-download": "#b06000", "unavailable": "#9aa0a6"}

#: the first-launch experiment: seconds on a laptop CPU for four ~256 px photos
DEFAULT_EXPERIMENT: dict[str, Any] = {
    "metrics": ["niqe"],
    "attacks": {"ifgsm": {"checked": True, "preset": "fine", "params": {}}},
    "defences": {"jpeg": {"checked": True, "preset": "", "params": {}},
                 "median-blur": {"checked": True, "preset": "", "params": {}}},
    "seed": 0, "device": "auto", "save_images": True, "adaptive": False,
}


#: the run options' budget choices: the benchmark's L∞ categories, two quality floors and
#: two cost budgets (equal time or queries per image, IOI's speed/gain comparison)
BUDGET_CHOICES = [("none (each attack's own strength)", None), ("L∞ 2/255", "linf-2"), ("L∞ 4/255", "linf-4"),
                  ("L∞ 8/255", "linf-8"), ("L∞ 16/255", "linf-16"), ("PSNR ≥ 40 dB", "psnr=40"),
                  ("SSIM ≥ 0.98", "ssim=0.98"), ("1 s per image (equal time)", "time=1s"),
                  ("1000 queries per image (equal queries)", "queries=1000")]
#: the run options' evaluation protocols (engine.evaluation.protocol)
PROTOCOL_CHOICES = [("lab (the attack's float image)", "lab"),
                    ("MSU (attacked image rounded to 8 bits, as defence_evaluate.py)", "msu")]

def _choice_combo(name: str, choices: list[tuple[str, object]], tooltip: str) -> QComboBox:
    """A combo of (text, value) choices whose long texts do not widen the dock (the
    1024×700 layout test)."""
    combo = QComboBox()
    combo.setObjectName(name)
    for text, value in choices:
        combo.addItem(text, value)
    combo.setMinimumContentsLength(12)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setToolTip(tooltip)
    return combo


class ExperimentPanel(QWidget):
    """Everything that defines an experiment, plus Run/Cancel and the progress bar."""

    runRequested = Signal()
    cancelRequested = Signal()
    changed = Signal()
    outputEdited = Signal(str)   # the user typed or browsed an output folder ("" = follow the folder)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metric_info: dict[str, dict[str, Any]] = {}
        self._scanned: list[dict[str, Any]] = []
        #: metrics given with their parameters (a TorchScript file), kept across rescans
        self.extra_metrics: list[dict[str, Any]] = []
        self._pending_metric_state: list[str] | None = None
        self._running = False
        self._shown_output = ""
        self.tracker = ProgressTracker()
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(250)
        self._progress_timer.timeout.connect(self._show_progress)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.setSpacing(6)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("experiment_tabs")
        mpage = QWidget()
        ml = QVBoxLayout(mpage)
        ml.setContentsMargins(6, 6, 6, 6)
        self.ready_only = QCheckBox("ready only (no download needed)")
        self.ready_only.setObjectName("metrics_ready_only")
        self.ready_only.setChecked(True)
        self.ready_only.setToolTip("Hide the metrics that need a download or cannot run here (ticked ones stay)")
        self.ready_only.toggled.connect(self._filter_metrics)
        ml.addWidget(self.ready_only)
        self.metrics = QListWidget()
        self.metrics.setObjectName("metrics_list")
        self.metrics.setAlternatingRowColors(True)
        self.metrics.itemChanged.connect(lambda *_: self.changed.emit())
        ml.addWidget(self.metrics, 1)
        self.metrics_note = QLabel("scanning metrics…")
        self.metrics_note.setObjectName("metrics_note")
        self.metrics_note.setWordWrap(True)
        ml.addWidget(self.metrics_note)
        self.tabs.addTab(mpage, "Metrics")

        self.attacks = ComponentPicker("Attacks", attack_classes())
        self.attacks.changed.connect(self.changed)
        self.tabs.addTab(self.attacks, "Attacks")
        self.defences = ComponentPicker("Defences", defence_classes(), hidden=("none",))
        self.study: str | None = None  # a loaded study (gui/study_menu.py); edits forget it
        self.attacks.changed.connect(self._forget_study), self.defences.changed.connect(self._forget_study)
        self.defences.changed.connect(self.changed)
        self.tabs.addTab(self.defences, "Defences")
        outer.addWidget(self.tabs, 1)

        self.summary = QLabel()
        self.summary.setObjectName("experiment_summary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        outer.addWidget(self.summary)
        self.changed.connect(self._update_summary)

        # options
        obox = QGroupBox("Run options")
        form = QFormLayout(obox)
        form.setContentsMargins(6, 6, 6, 6)
        self.device = QComboBox()
        self.device.setObjectName("device")
        self.device.addItem("auto", "auto")
        self.device.addItem("CPU", "cpu")
        self.device.addItem("CUDA", "cuda")
        self.device.setToolTip("auto: CUDA when available, else CPU")
        self._disable_cuda_if_missing()
        self.seed = QSpinBox()
        self.seed.setObjectName("seed")
        self.seed.setRange(0, 2_147_483_647)
        self.seed.setToolTip("Master seed: per-item seeds derive from it (same seed → same numbers)")
        form.addRow("device", self.device)
        form.addRow("seed", self.seed)
        self.save_images = QCheckBox("save images")
        self.save_images.setObjectName("save_images")
        self.save_images.setToolTip("Write clean, attacked and defended images as lossless PNG next to the store (the inspector shows them for stored items)")
        self.adaptive = QCheckBox("adaptive")
        self.adaptive.setObjectName("adaptive")
        self.adaptive.setToolTip("Attack the metric behind each defence (M∘D, BPDA/EOT) instead of the bare metric")
        opt_row = QHBoxLayout()
        opt_row.addWidget(self.save_images)
        opt_row.addWidget(self.adaptive)
        form.addRow("", opt_row)
        self.eot_draws = QSpinBox()
        self.eot_draws.setObjectName("eot_draws")
        self.eot_draws.setRange(1, 1000)
        self.eot_draws.setToolTip("Random defences (noise, crop, rotate, DiffPure…) are evaluated over N seeded "
                                  "draws: every score is the mean, its spread is stored as *_std (1 = one draw)")
        self.batch_size = QSpinBox()
        self.batch_size.setObjectName("batch_size")
        self.batch_size.setRange(0, 4096)
        self.batch_size.setValue(1)
        self.batch_size.setSpecialValueText("auto")
        self.batch_size.setToolTip("Items computed together as one batch (auto: as many as fit); "
                                   "where it runs, not what it computes: the rows are the same")
        eot_row = QHBoxLayout()
        eot_row.addWidget(self.eot_draws, 1)
        eot_row.addWidget(QLabel("batch"))
        eot_row.addWidget(self.batch_size, 1)
        form.addRow("EOT draws", eot_row)
        self.budget = _choice_combo("budget", BUDGET_CHOICES,
                                    "Attack at an equal perturbation budget: each attack's strength is calibrated "
                                    "(in the worker, kept in budgets.json next to the store) before the run")
        form.addRow("budget", self.budget)
        self.protocol = _choice_combo("protocol", PROTOCOL_CHOICES,
                                      "How attacked images are evaluated: lab scores and defends the attack's float "
                                      "output; MSU rounds it to 8 bits first, as MSU's benchmark reads PNG files")
        form.addRow("protocol", self.protocol)
        self.backend = QComboBox()
        self.backend.setObjectName("backend")
        self.backend.addItem("local", "local")
        self.backend.addItem("Ray", "ray")
        self.backend.setToolTip("Where the items are computed: local (this process) or on Ray workers; "
                                "the store is always written here")
        self.ray_address = QLineEdit()
        self.ray_address.setObjectName("ray_address")
        self.ray_address.setPlaceholderText("auto, host:6379 or ray://host:10001")
        self.ray_address.setToolTip("Empty: start a Ray instance on this machine; auto or host:6379: "
                                    "join a cluster from one of its nodes; ray://host:10001: from "
                                    "outside it, through Ray Client")
        self.ray_workers = QSpinBox()
        self.ray_workers.setObjectName("ray_workers")
        self.ray_workers.setRange(0, 1024)
        self.ray_workers.setSpecialValueText("auto")
        self.ray_workers.setToolTip("Ray workers (auto: one per GPU, else per CPU)")
        be_row = QHBoxLayout()
        be_row.addWidget(self.backend, 1)
        be_row.addWidget(self.ray_address, 4)
        be_row.addWidget(self.ray_workers, 1)
        form.addRow("back end", be_row)
        self.backend.currentIndexChanged.connect(self._on_backend)
        self._on_backend()
        self.output = QLineEdit()
        self.output.setObjectName("output_dir")
        self.output.setToolTip("Folder of the result store (results.sqlite) and saved images")
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse_output)
        self.output.editingFinished.connect(self._on_output_edited)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output, 1)
        out_row.addWidget(browse)
        form.addRow("output", out_row)
        outer.addWidget(obox)

        # run
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("run_button")
        self.run_button.setMinimumHeight(34)
        self.run_button.clicked.connect(self._on_run_clicked)
        outer.addWidget(self.run_button)
        prow = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setObjectName("progress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        prow.addWidget(self.progress, 1)
        self.eta = QLabel("ETA —")
        self.eta.setObjectName("eta")
        self.eta.setVisible(False)
        self.eta.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        prow.addWidget(self.eta)
        outer.addLayout(prow)

        self._options = (self.device, self.seed, self.save_images, self.adaptive, self.eot_draws, self.batch_size,
                         self.budget, self.protocol, self.backend, self.ray_address, self.ray_workers, self.output)
        for w in self._options:
            sig = getattr(w, "currentIndexChanged", None) or getattr(w, "valueChanged", None) \
                or getattr(w, "toggled", None) or w.editingFinished
            sig.connect(lambda *_: self.changed.emit())

    def _forget_study(self) -> None:
        self.study = None

    def _disable_cuda_if_missing(self) -> None:
        try:
            import torch

            has_cuda = torch.cuda.is_available()
        except Exception:  # noqa: BLE001
            has_cuda = False
        if not has_cuda:
            item = self.device.model().item(2)
            item.setEnabled(False)
            item.setToolTip("no CUDA device on this machine")

    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output.text() or str(Path.home()))
        if folder:
            self.output.setText(folder)
            self._on_output_edited()

    def _on_output_edited(self) -> None:
        if self.output.text().strip() != self._shown_output:
            self._shown_output = self.output.text().strip()
            self.outputEdited.emit(self._shown_output)
        self.changed.emit()

    def show_output(self, path: str) -> None:
        """Show where the run will write (the session decides) without emitting outputEdited."""
        self._shown_output = path
        self.output.setText(path)
        self.output.setCursorPosition(0)
        self.output.setToolTip(path)

    def _on_backend(self, *_: object) -> None:
        ray = self.backend.currentData() == "ray"
        self.ray_address.setEnabled(ray and not self._running)
        self.ray_workers.setEnabled(ray and not self._running)

    def backend_options(self) -> dict[str, Any]:
        """``make_backend`` keyword arguments: name, address, workers."""
        return {"name": self.backend.currentData(), "address": self.ray_address.text().strip() or None,
                "workers": self.ray_workers.value() or None}

    # ---- metrics -------------------------------------------------------------------------
    @Slot(object)
    def set_metrics(self, entries: list[dict[str, Any]]) -> None:
        """Fill the metric list from :func:`gui.catalog.scan_metrics` output."""
        checked = self._pending_metric_state if self._pending_metric_state is not None else self.checked_metrics()
        self._pending_metric_state = None
        self._scanned = list(entries)
        entries = [*entries, *(e for e in self.extra_metrics if e["name"] not in {x["name"] for x in entries})]
        self.metric_info = {e["name"]: e for e in entries}
        self.metrics.blockSignals(True)
        self.metrics.clear()
        order = {"ready": 0, "needs-download": 1}   # grouped: what runs here first
        for e in sorted(entries, key=lambda e: order.get(e["state"], 2)):
            state = e["state"]
            tag = "  (plug-in)" if e.get("plugin") else ""
            item = QListWidgetItem(f"{e['name']}{tag}  —  {STATE_TEXT.get(state, state)}")
            item.setData(Qt.ItemDataRole.UserRole, e["name"])
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if e["name"] in checked else Qt.CheckState.Unchecked)
            item.setForeground(QColor(STATE_COLORS.get(state, "#202124")))
            tip = [e["name"]]
            if e.get("lower_better") is not None:
                tip.append("lower is better" if e["lower_better"] else "higher is better")
            if e.get("source"):
                tip.append(f"source: {e['source']}")
            if e.get("plugin"):
                tip.append(f"plug-in: {e['plugin']}")
            if e.get("reason"):
                tip.append(f"{STATE_TEXT.get(state, state)}: {e['reason']}")
            item.setToolTip("\n".join(tip))
            if state == "unavailable":
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.metrics.addItem(item)
        self.metrics.blockSignals(False)
        self._filter_metrics()
        ready = sum(e["state"] == "ready" for e in entries)
        self.metrics_note.setText(f"{ready} ready · {len(entries) - ready} need a download or are unavailable "
                                  "(hover for the reason)")
        self.changed.emit()

    def add_metric_entry(self, entry: dict[str, Any], checked: bool = True) -> None:
        """A metric given with its parameters (``torchscript:path=…``), listed beside the
        scanned ones (and kept when they are scanned again)."""
        self.extra_metrics = [e for e in self.extra_metrics if e["name"] != entry["name"]] + [entry]
        keep = self.checked_metrics() + ([entry["name"]] if checked else [])
        self._pending_metric_state = keep
        self.set_metrics(self._scanned)

    def _filter_metrics(self, *_: object) -> None:
        """With "ready only", only the metrics that run here (and any ticked one) are listed."""
        only = self.ready_only.isChecked()
        for i in range(self.metrics.count()):
            item = self.metrics.item(i)
            state = (self.metric_info.get(item.data(Qt.ItemDataRole.UserRole)) or {}).get("state")
            ticked = item.checkState() == Qt.CheckState.Checked
            item.setHidden(only and state != "ready" and not ticked)

    def shown_metrics(self) -> list[str]:
        """The names the metric list shows now."""
        return [self.metrics.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.metrics.count())
                if not self.metrics.item(i).isHidden()]

    @Slot(str)
    def metrics_failed(self, message: str) -> None:
        self.metrics_note.setText(f"metric list unavailable: {message}")

    def checked_metrics(self) -> list[str]:
        if self._pending_metric_state is not None and self.metrics.count() == 0:
            return list(self._pending_metric_state)
        return [self.metrics.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.metrics.count())
                if self.metrics.item(i).checkState() == Qt.CheckState.Checked]

    def set_checked_metrics(self, names: list[str]) -> None:
        if self.metrics.count() == 0:
            self._pending_metric_state = list(names)
            return
        for i in range(self.metrics.count()):
            item = self.metrics.item(i)
            on = item.data(Qt.ItemDataRole.UserRole) in names and bool(item.flags() & Qt.ItemFlag.ItemIsEnabled)
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self._filter_metrics()

    def lower_better(self, metric_label: str) -> bool | None:
        name = metric_label.split("[")[0].split("(")[0]
        return (self.metric_info.get(name) or {}).get("lower_better")

    # ---- experiment ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """A JSON-able description of the panel (kept in QSettings)."""
        return {"metrics": self.checked_metrics(), "attacks": self.attacks.state(),
                "defences": self.defences.state(), "seed": self.seed.value(),
                "device": self.device.currentData(), "save_images": self.save_images.isChecked(),
                "adaptive": self.adaptive.isChecked(), "eot_draws": self.eot_draws.value(),
                "batch_size": self.batch_size.value() or "auto", "backend": self.backend.currentData(),
                "budget": self.budget.currentData(), "protocol": self.protocol.currentData(),
                "ray_address": self.ray_address.text().strip(), "ray_workers": self.ray_workers.value(),
                "output": self.output.text()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.set_checked_metrics(list(state.get("metrics", [])))
        self.attacks.set_state(state.get("attacks", {}))
        self.defences.set_state(state.get("defences", {}))
        self.seed.setValue(int(state.get("seed", 0)))
        idx = self.device.findData(state.get("device", "auto"))
        self.device.setCurrentIndex(max(0, idx))
        self.save_images.setChecked(bool(state.get("save_images", False)))
        self.adaptive.setChecked(bool(state.get("adaptive", False)))
        self.eot_draws.setValue(int(state.get("eot_draws", 1)))
        batch = state.get("batch_size", 1)
        self.batch_size.setValue(0 if batch == "auto" else int(batch or 1))
        self.backend.setCurrentIndex(max(0, self.backend.findData(state.get("backend", "local"))))
        self.budget.setCurrentIndex(max(0, self.budget.findData(state.get("budget"))))
        self.protocol.setCurrentIndex(max(0, self.protocol.findData(state.get("protocol", "lab"))))
        self.ray_address.setText(state.get("ray_address") or "")
        self.ray_workers.setValue(int(state.get("ray_workers") or 0))
        if "output" in state:
            self.show_output(state.get("output") or "")
            self.outputEdited.emit(self._shown_output)

    def build_experiment(self, images: list[str], root: str | None) -> Experiment:
        """The experiment the panel describes, on ``images``.

        Raises:
            ValueError: with a user-facing message when something is missing.
        """
        if not images:
            raise ValueError("no images: open a folder first")
        metrics = self.checked_metrics()
        if not metrics:
            raise ValueError("tick at least one metric")
        attacks = self.attacks.specs()
        if not attacks:
            raise ValueError("tick at least one attack")
        device = self.device.currentData()
        if device == "cuda" and not self.device.model().item(2).isEnabled():
            raise ValueError("CUDA was chosen but this machine has no CUDA device")
        return Experiment(images=list(images), root=root, metrics=metrics, attacks=attacks,
                          defences=self.defences.specs(), seed=self.seed.value(), adaptive=self.adaptive.isChecked(),
                          save_images=self.save_images.isChecked(), device=device,
                          eot_draws=self.eot_draws.value(), batch_size=self.batch_size.value() or "auto",
                          budget=self.budget.currentData(), study=self.study,
                          protocol=self.protocol.currentData() or "lab")

    def _update_summary(self) -> None:
        metrics = self.checked_metrics()
        attacks = [a.label for a in self.attacks.specs()]
        defences = ["none"] + [d.label for d in self.defences.specs()]
        self.tabs.setTabText(0, f"Metrics ({len(metrics)})")
        self.tabs.setTabText(1, f"Attacks ({len(attacks)})")
        self.tabs.setTabText(2, f"Defences ({len(defences) - 1})")

        def short(names: list[str], n: int = 3) -> str:
            if not names:
                return "<span style='color:#d93025'>none chosen</span>"
            return ", ".join(names[:n]) + (f" +{len(names) - n}" if len(names) > n else "")

        self.summary.setText(f"<b>metrics</b> {short(metrics)} · <b>attacks</b> {short(attacks)}<br>"
                             f"<b>defences</b> {short(defences, 4)}")

    # ---- run state -----------------------------------------------------------------------
    def _on_run_clicked(self) -> None:
        if self._running:
            self.run_button.setEnabled(False)
            self.run_button.setText("Cancelling…")
            self.cancelRequested.emit()
        else:
            self.runRequested.emit()

    def set_running(self, running: bool) -> None:
        self._running = running
        self.run_button.setEnabled(True)
        self.run_button.setText("Cancel" if running else "Run")
        self.run_button.setProperty("running", running)
        self.run_button.style().unpolish(self.run_button)
        self.run_button.style().polish(self.run_button)
        for w in (self.metrics, self.attacks, self.defences, *self._options):
            w.setEnabled(not running)
        self._on_backend()

    @property
    def running(self) -> bool:
        return self._running

    def start_progress(self, pending: int, total: int) -> None:
        self.tracker.start(pending)
        self.progress.setValue(0)
        skipped = total - pending
        self.progress.setFormat(f"0 / {pending} items" + (f" ({skipped} done before)" if skipped else ""))
        self.eta.setText("ETA —")
        self.eta.setVisible(True)

    def update_progress(self, finished: int | None = None, fraction_in_item: float | None = None) -> None:
        """Record progress; the bar and ETA are repainted by a timer (~4 Hz), not per step."""
        t = self.tracker
        if finished is not None:
            t.finished = finished
        if fraction_in_item is not None:
            t.fraction_in_item = max(0.0, min(1.0, fraction_in_item))
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _show_progress(self) -> None:
        if not self._running:
            return
        t = self.tracker
        self.progress.setValue(int(round(1000 * t.progress)))
        self.progress.setFormat(f"{t.finished} / {t.pending} items  ·  {100 * t.progress:.0f}%")
        self.eta.setText(format_eta(t.eta()))

    def reset_progress(self) -> None:
        """Idle: nothing of an earlier run or another experiment is left on the bar."""
        self._progress_timer.stop()
        self.tracker.start(0)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.progress.setToolTip("")
        self.eta.setText("")
        self.eta.setVisible(False)

    def finish_progress(self, text: str) -> None:
        self._progress_timer.stop()
        self.progress.setFormat(text)
        self.progress.setToolTip(text)
        if self.tracker.pending:
            self.progress.setValue(int(round(1000 * self.tracker.finished / self.tracker.pending)))
        self.eta.setText("")
        self.eta.setVisible(False)
