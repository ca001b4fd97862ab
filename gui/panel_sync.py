"""The session's notifications → the main window's panels (results, plots, leaderboard,
images, progress, status bar), in the GUI thread."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Slot


class PanelSync(QObject):
    """Keeps the panels of ``window`` (a :class:`gui.main_window.MainWindow`) on the
    session's folder, store and experiment: every panel shows it, or nothing."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.w = window
        s = window.session
        s.folder_changed.connect(self._on_folder)
        s.output_changed.connect(window.panel.options.show_output)
        s.experiment_changed.connect(self._on_experiment)
        s.rows_reset.connect(self._on_rows_reset)
        s.rows_added.connect(self._on_rows_added)
        s.run_finished.connect(self._on_run_finished)
        s.image_changed.connect(window.images.set_image_status)
        s.images_changed.connect(window.images.set_image_statuses)
        s.message.connect(window.log.log)

    def _on_folder(self, folder: str, images: list[str]) -> None:
        w = self.w
        w.images.show_folder(folder, images)
        w.curves.clear()
        w.curves.caption.setText("Score per attack iteration — press Run")
        w.panel.progress.reset()
        self._check_headers(folder, images)
        w.status_run.setText(f"ready: {len(images)} image(s) in {Path(folder).name}" if images
                             else f"no images in {folder}")
        w.settings.setValue("lastFolder", folder)
        w.settings.setValue("recentFolders", json.dumps(w.images.recent))

    def _check_headers(self, folder: str, images: list[str]) -> None:
        """Find unreadable files now, in the background, not when a run reaches them."""
        from gui.header_check import unreadable_images

        self.w.pool.call(lambda: (folder, unreadable_images(images)), self._on_headers, self._on_headers_failed)

    @Slot(object)
    def _on_headers(self, result: tuple[str, dict[str, str]]) -> None:
        self.w.session.set_unreadable(*result)

    @Slot(str)
    def _on_headers_failed(self, message: str) -> None:
        self.w.log.log("error", f"could not check the images: {message}")

    def _on_experiment(self) -> None:
        w, s = self.w, self.w.session
        w.results.set_experiments(s.experiments(), s.exp_id)
        w.status_store.setText(str(s.store_path) if s.store_path else "no store")
        w.results.set_note(f"{s.reused} reused from the store" if s.reused else "")
        if not s.running:
            w.panel.progress.reset()
            self.show_leaderboard()
        elif w.leaderboard.shown_experiment() != s.exp_id:
            w.leaderboard.clear("the leaderboard of this run shows when it has finished")

    def _on_rows_reset(self, rows: list[dict[str, Any]]) -> None:
        w = self.w
        w.results.set_rows(rows)
        self._plots()
        if rows and not w.session.running:
            first = next((r for r in rows if r.get("item_id") and not r.get("error")), None)
            if first is not None:
                w.display.show_item(first["item_id"])

    def _on_run_finished(self, *_: Any) -> None:
        if self.w.isVisible():   # not while closing after a run
            self.show_leaderboard(force=True)

    def show_leaderboard(self, *, force: bool = False) -> None:
        """The leaderboard of the experiment shown, or nothing when it is not stored yet."""
        w, s = self.w, self.w.session
        stored = s.store_path is not None and s.exp_id and any(e["id"] == s.exp_id for e in s.stored_experiments)
        if not stored:
            w.leaderboard.clear("no stored experiment shown")
        elif force or w.leaderboard.shown_experiment() != s.exp_id:
            w.leaderboard.show_store(str(s.store_path), s.exp_id)

    def _on_rows_added(self, rows: list[dict[str, Any]]) -> None:
        self.w.results.add_rows(rows)
        self._plots()

    def _plots(self) -> None:
        rows = self.w.model.rows
        self.w.gain_plot.set_rows(rows)
        self.w.quality_plot.set_rows(rows)
