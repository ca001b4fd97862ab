"""Experiment panel: metrics, attacks, defences, options, and the Run/Cancel button."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.spec.experiment import Experiment
from gui.catalog import STATE_TEXT, attack_classes, defence_classes
from gui.components import ComponentPicker
from gui.run_options import RunOptions
from gui.run_progress import RunProgress

STATE_COLORS = {"ready": "#188038", "needs-download": "#b06000", "unavailable": "#9aa0a6"}

#: the first-launch experiment: seconds on a laptop CPU for four ~256 px photos
DEFAULT_EXPERIMENT: dict[str, Any] = {
    "metrics": ["niqe"],
    "attacks": {"ifgsm": {"checked": True, "preset": "fine", "params": {}}},
    "defences": {"jpeg": {"checked": True, "preset": "", "params": {}},
                 "median-blur": {"checked": True, "preset": "", "params": {}}},
    "seed": 0, "device": "auto", "save_images": True, "adaptive": False,
}


class ExperimentPanel(QWidget):
    """Everything that defines an experiment, plus Run/Cancel and the progress bar."""

    runRequested = Signal()
    cancelRequested = Signal()
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metric_info: dict[str, dict[str, Any]] = {}
        self._scanned: list[dict[str, Any]] = []
        #: metrics given with their parameters (a TorchScript file), kept across rescans
        self.extra_metrics: list[dict[str, Any]] = []
        self._pending_metric_state: list[str] | None = None
        self._running = False

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

        self.options = RunOptions()
        self.options.changed.connect(self.changed)
        outer.addWidget(self.options)

        # run
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("run_button")
        self.run_button.setMinimumHeight(34)
        self.run_button.clicked.connect(self._on_run_clicked)
        outer.addWidget(self.run_button)
        self.progress = RunProgress()
        outer.addWidget(self.progress)

    def _forget_study(self) -> None:
        self.study = None

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
                "defences": self.defences.state(), **self.options.state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.set_checked_metrics(list(state.get("metrics", [])))
        self.attacks.set_state(state.get("attacks", {}))
        self.defences.set_state(state.get("defences", {}))
        self.options.set_state(state)

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
        o = self.options
        if o.cuda_missing():
            raise ValueError("CUDA was chosen but this machine has no CUDA device")
        return Experiment(images=list(images), root=root, metrics=metrics, attacks=attacks,
                          defences=self.defences.specs(), seed=o.seed.value(), adaptive=o.adaptive.isChecked(),
                          save_images=o.save_images.isChecked(), keep_attacked=o.keep_attacked.isChecked(),
                          device=o.device.currentData(),
                          eot_draws=o.eot_draws.value(), batch_size=o.batch_size.value() or "auto",
                          budget=o.budget.currentData(), study=self.study,
                          protocol=o.protocol.currentData() or "lab")

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
        for w in (self.metrics, self.attacks, self.defences):
            w.setEnabled(not running)
        self.options.set_running(running)

    @property
    def running(self) -> bool:
        return self._running
