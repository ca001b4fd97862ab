"""The experiment panel's run options: device, seed, images, EOT, batch, budget, protocol,
back end and output folder."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

#: the budget choices: the benchmark's L∞ categories, two quality floors and two cost
#: budgets (equal time or queries per image, IOI's speed/gain comparison)
BUDGET_CHOICES = [("none (each attack's own strength)", None), ("L∞ 2/255", "linf-2"), ("L∞ 4/255", "linf-4"),
                  ("L∞ 8/255", "linf-8"), ("L∞ 16/255", "linf-16"), ("PSNR ≥ 40 dB", "psnr=40"),
                  ("SSIM ≥ 0.98", "ssim=0.98"), ("1 s per image (equal time)", "time=1s"),
                  ("1000 queries per image (equal queries)", "queries=1000")]
#: the evaluation protocols (engine.evaluation.protocol)
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


def _spin(name: str, low: int, high: int, tooltip: str, special: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setObjectName(name)
    spin.setRange(low, high)
    if special:
        spin.setSpecialValueText(special)
    spin.setToolTip(tooltip)
    return spin


def _row(*widgets: tuple[QWidget, int]) -> QHBoxLayout:
    row = QHBoxLayout()
    for widget, stretch in widgets:
        row.addWidget(widget, stretch)
    return row


class RunOptions(QGroupBox):
    """How and where an experiment runs (what changes its numbers: seed, adaptive, EOT
    draws, budget, protocol; what does not: device, batch, back end, output).

    Signals:
        changed(): any option changed.  outputEdited(str): the user typed or browsed an
        output folder ("" = follow the folder).
    """

    changed = Signal()
    outputEdited = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Run options", parent)
        self._running = False
        self._shown_output = ""
        form = QFormLayout(self)
        form.setContentsMargins(6, 6, 6, 6)
        form.setVerticalSpacing(3)  # ten rows fit the 1024×700 window without raising its height
        self.device = QComboBox()
        self.device.setObjectName("device")
        for text, value in (("auto", "auto"), ("CPU", "cpu"), ("CUDA", "cuda")):
            self.device.addItem(text, value)
        self.device.setToolTip("auto: CUDA when available, else CPU")
        self._disable_cuda_if_missing()
        self.seed = _spin("seed", 0, 2_147_483_647,
                          "Master seed: per-item seeds derive from it (same seed → same numbers)")
        form.addRow("device", self.device)
        form.addRow("seed", self.seed)
        self.save_images = QCheckBox("save images")
        self.save_images.setObjectName("save_images")
        self.save_images.setToolTip("Write clean, attacked and defended images as lossless PNG next to the store "
                                    "(the inspector shows them for stored items)")
        self.keep_attacked = QCheckBox("keep attacked")
        self.keep_attacked.setObjectName("keep_attacked")
        self.keep_attacked.setToolTip("Keep an exact float copy of every attacked image next to the store (12 bytes "
                                      "per pixel: 2.4 MB for 512×384), so that a defence added later reuses the "
                                      "attack instead of running it again")
        self.adaptive = QCheckBox("adaptive")
        self.adaptive.setObjectName("adaptive")
        self.adaptive.setToolTip("Attack the metric behind each defence (M∘D, BPDA/EOT) instead of the bare metric")
        form.addRow("", _row((self.save_images, 0), (self.adaptive, 0)))
        form.addRow("", self.keep_attacked)
        self.eot_draws = _spin("eot_draws", 1, 1000,
                               "Random defences (noise, crop, rotate, DiffPure…) are evaluated over N seeded draws: "
                               "every score is the mean, its spread is stored as *_std (1 = one draw)")
        self.batch_size = _spin("batch_size", 0, 4096, "Items computed together as one batch (auto: as many as "
                                "fit); where it runs, not what it computes: the rows are the same", "auto")
        self.batch_size.setValue(1)
        form.addRow("EOT draws", _row((self.eot_draws, 1), (QLabel("batch"), 0), (self.batch_size, 1)))
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
        self.ray_workers = _spin("ray_workers", 0, 1024, "Ray workers (auto: one per GPU, else per CPU)", "auto")
        form.addRow("back end", _row((self.backend, 1), (self.ray_address, 4), (self.ray_workers, 1)))
        self.backend.currentIndexChanged.connect(self._on_backend)
        self._on_backend()
        self.output = QLineEdit()
        self.output.setObjectName("output_dir")
        self.output.setToolTip("Folder of the result store (results.sqlite) and saved images")
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse_output)
        self.output.editingFinished.connect(self._on_output_edited)
        form.addRow("output", _row((self.output, 1), (browse, 0)))

        self.widgets = (self.device, self.seed, self.save_images, self.keep_attacked, self.adaptive, self.eot_draws,
                        self.batch_size, self.budget, self.protocol, self.backend, self.ray_address, self.ray_workers, self.output)
        for w in self.widgets:
            sig = getattr(w, "currentIndexChanged", None) or getattr(w, "valueChanged", None) \
                or getattr(w, "toggled", None) or w.editingFinished
            sig.connect(self.changed)

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

    def cuda_missing(self) -> bool:
        """CUDA is chosen on a machine without it."""
        return self.device.currentData() == "cuda" and not self.device.model().item(2).isEnabled()

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

    def set_running(self, running: bool) -> None:
        self._running = running
        for w in self.widgets:
            w.setEnabled(not running)
        self._on_backend()

    def backend_options(self) -> dict[str, Any]:
        """``make_backend`` keyword arguments: name, address, workers."""
        return {"name": self.backend.currentData(), "address": self.ray_address.text().strip() or None,
                "workers": self.ray_workers.value() or None}

    def state(self) -> dict[str, Any]:
        """The options' part of :meth:`gui.experiment_panel.ExperimentPanel.state`."""
        return {"seed": self.seed.value(), "device": self.device.currentData(),
                "save_images": self.save_images.isChecked(), "keep_attacked": self.keep_attacked.isChecked(),
                "adaptive": self.adaptive.isChecked(),
                "eot_draws": self.eot_draws.value(), "batch_size": self.batch_size.value() or "auto",
                "backend": self.backend.currentData(), "budget": self.budget.currentData(),
                "protocol": self.protocol.currentData(), "ray_address": self.ray_address.text().strip(),
                "ray_workers": self.ray_workers.value(), "output": self.output.text()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.seed.setValue(int(state.get("seed", 0)))
        self.device.setCurrentIndex(max(0, self.device.findData(state.get("device", "auto"))))
        self.save_images.setChecked(bool(state.get("save_images", False)))
        self.keep_attacked.setChecked(bool(state.get("keep_attacked", False)))
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
