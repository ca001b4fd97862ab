"""The Tools menu's windows: plug-ins, FCN training and robust-metric training, each made
on first use and fed from the main window's folder, metrics and output."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Slot

from gui.catalog import attack_classes, defence_classes
from gui.plugins_dialog import PluginsDialog
from gui.training_dialog import FCNTrainDialog


def _present(dialog: Any) -> Any:
    """Show ``dialog`` in front; returns it."""
    dialog.show()
    dialog.raise_()
    return dialog


class ToolWindows(QObject):
    """Opens the tool windows of ``window`` (a :class:`gui.main_window.MainWindow`) and
    puts what they make (a checkpoint, trained weights, plug-ins) into its panel."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.w = window
        self.plugins_dialog: PluginsDialog | None = None
        self.fcn_dialog: FCNTrainDialog | None = None
        self.robust_dialog: Any = None  # gui.robust_training_dialog.RobustTrainDialog, made on first use

    def open_plugins(self) -> PluginsDialog:
        """Tools → Plug-ins…: load plug-in files, see what they registered and their errors."""
        w = self.w
        if self.plugins_dialog is None:
            self.plugins_dialog = PluginsDialog(w)
            self.plugins_dialog.loaded.connect(self.follow_registries)
            self.plugins_dialog.metricAdded.connect(w.panel.add_metric_entry)
            self.plugins_dialog.message.connect(w.log.log)
            self.plugins_dialog.show_errors(w.plugin_errors)
        self.plugins_dialog.refresh()
        return _present(self.plugins_dialog)

    @Slot()
    def follow_registries(self) -> None:
        """The attack and defence lists follow the registries; the metrics are scanned again."""
        self.w.panel.attacks.sync(attack_classes())
        self.w.panel.defences.sync(defence_classes())
        self.w.rescan_metrics()

    def _ready_metrics(self) -> list[str]:
        return [n for n, e in self.w.panel.metric_info.items() if e.get("state") == "ready"]

    def open_fcn_training(self) -> FCNTrainDialog:
        """Show the FCN training window, offering the window's folder, metrics and output."""
        w = self.w
        if self.fcn_dialog is None:
            self.fcn_dialog = FCNTrainDialog(w)
            self.fcn_dialog.useCheckpoint.connect(self.use_fcn_checkpoint)
        ready = self._ready_metrics()
        checked = [m for m in w.panel.checked_metrics() if m in ready]
        self.fcn_dialog.prefill(w.session.folder, checked + [m for m in ready if m not in checked],
                                w.session.output_dir)
        return _present(self.fcn_dialog)

    @Slot(str)
    def use_fcn_checkpoint(self, path: str) -> None:
        """Tick the ``fcn`` defence with a trained checkpoint."""
        panel = self.w.panel
        panel.defences.set_choice("fcn", checked=True, params={"checkpoint": path})
        panel.tabs.setCurrentWidget(panel.defences)
        panel.defences.select("fcn")
        self.w.log.log("info", f"fcn defence set to the checkpoint {path}")

    def open_robust_training(self) -> Any:
        """Show the robust-metric training window (Tools → Train robust metric…)."""
        from gui.robust_training_dialog import RobustTrainDialog

        w = self.w
        if self.robust_dialog is None:
            self.robust_dialog = RobustTrainDialog(w)
            self.robust_dialog.useMetric.connect(self.use_robust_metric)
        self.robust_dialog.prefill(w.session.folder, self._ready_metrics(), w.session.output_dir)
        return _present(self.robust_dialog)

    @Slot(str)
    def use_robust_metric(self, spec: str) -> None:
        """Add ``NAME:weights=FILE`` to the metric list, ticked (a row of its own in results)."""
        panel = self.w.panel
        panel.add_metric_entry({"name": spec, "state": "ready", "reason": "", "lower_better": None,
                                "source": "trained weights"})
        panel.tabs.setCurrentIndex(0)
        self.w.log.log("info", f"metric added: {spec}")

    def stop_training(self, timeout_ms: int) -> None:
        """Stop any training (after the epoch in progress; what is saved stays) and wait."""
        for dialog in (self.fcn_dialog, self.robust_dialog):
            if dialog is not None and dialog.running:
                dialog.stop()
                dialog.wait(timeout_ms)
