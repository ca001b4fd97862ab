"""File menu actions on the experiment shown: CSV export, the shown images, the report.

Each writes into a folder the user names; the folder may not exist yet (it is created),
which a plain "choose an existing directory" dialog refuses.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QFileDialog, QWidget

from gui.session import Session
from gui.worker import BackgroundCall, BackgroundPool


def ask_folder(parent: QWidget, title: str, start: str) -> str | None:
    """A folder to write into, existing or new (typed as a name in the dialog)."""
    dialog = QFileDialog(parent, title, start)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)      # a new name is accepted
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    dialog.setLabelText(QFileDialog.DialogLabel.Accept, "Use folder")
    dialog.selectFile("export")   # a new folder's name, in ``start``
    if not dialog.exec():
        return None
    chosen = dialog.selectedFiles()
    return chosen[0] if chosen else None


class FileActions(QObject):
    """Export CSV, save the shown images and build the report of the experiment shown."""

    def __init__(self, session: Session, window: Any, pool: BackgroundPool) -> None:
        super().__init__(window)
        self.session, self.w, self.pool = session, window, pool
        self.ask_folder = ask_folder   # tests replace it

    def _log(self, level: str, text: str) -> None:
        self.w.log.log(level, text)

    def describe(self) -> str:
        """Which experiment the action writes, e.g. ``3f2a1b0c (cancelled: 4/9 items)``."""
        s = self.session
        e = next((e for e in s.stored_experiments if e["id"] == s.exp_id), None)
        if e is None:
            return f"{(s.exp_id or '')[:8]} (not stored yet)"
        state = "complete" if e["done"] == e["total"] else "incomplete"
        return f"{e['id'][:8]} ({state}: {e['done']}/{e['total']} items)"

    def _need_store(self) -> bool:
        s = self.session
        if s.store_path is None or s.exp_id is None or not Path(s.store_path).exists() \
                or s.experiment_state() == "new":
            self._log("error", "nothing to export yet: run an experiment or open a store")
            return False
        return True

    def _start(self) -> str:
        s = self.session
        return str(s.store_path.parent) if s.store_path else str(Path.home())

    # ---- CSV ------------------------------------------------------------------------------
    def choose_export_csv(self) -> None:
        if self._need_store():
            folder = self.ask_folder(self.w, f"Export CSV of experiment {self.describe()} to folder", self._start())
            if folder:
                self.export_csv(folder)

    def export_csv(self, folder: str | Path) -> tuple[Path, Path] | None:
        """Write raw.csv and summary.csv of the experiment shown (as the CLI does)."""
        if not self._need_store():
            return None
        from engine.results.export import export_csv
        from engine.store.db import ResultStore

        s = self.session
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            with ResultStore(s.store_path, readonly=True) as store:
                raw, summary = export_csv(store, folder, s.exp_id)
        except Exception as exc:  # noqa: BLE001
            self._log("error", f"CSV export failed: {exc}")
            return None
        self._log("ok", f"exported experiment {self.describe()}: {raw} and {summary}")
        return raw, summary

    # ---- images ---------------------------------------------------------------------------
    def choose_save_images(self) -> None:
        if not self.w.inspector.shown_arrays():
            self._log("error", "no images shown: pick a row in Results first")
            return
        folder = self.ask_folder(self.w, "Save the shown images to folder", self._start())
        if folder:
            self.save_shown_images(folder)

    def save_shown_images(self, folder: str | Path) -> list[Path]:
        from PIL import Image

        from engine.store.db import slug

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for name, arr in self.w.inspector.shown_arrays().items():
            p = folder / f"{slug(name)}.png"
            Image.fromarray(arr).save(p)
            out.append(p)
        self._log("ok", f"saved {len(out)} image(s) to {folder}")
        return out

    # ---- report ---------------------------------------------------------------------------
    def choose_report(self) -> None:
        if self._need_store():
            folder = self.ask_folder(self.w, f"Write the report of experiment {self.describe()} to folder",
                                     self._start())
            if folder:
                self.build_report(folder)

    def build_report(self, folder: str | Path) -> BackgroundCall | None:
        """Build the report (engine.results.report) in a background thread."""
        if not self._need_store():
            return None
        try:
            from engine.results.report import build_report
        except ImportError as exc:
            self._log("error", f"reports are not available in this installation (engine.results.report: {exc})")
            return None
        store_path, exp_id = str(self.session.store_path), self.session.exp_id
        self._log("info", f"building the report of experiment {self.describe()} in {folder}…")
        return self.pool.call(lambda: build_report(store_path, str(folder), experiment_id=exp_id),
                              self._on_report_done, self._on_report_failed)

    @Slot(object)
    def _on_report_done(self, result: Any) -> None:
        self._log("ok", f"report written: {result}")

    @Slot(str)
    def _on_report_failed(self, message: str) -> None:
        self._log("error", f"report failed: {message}")
