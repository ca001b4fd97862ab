"""Showing one item: its images in the inspector, its curve, its thumbnail and table row.

Images of items finished in this session are in memory; a stored item's PNGs (or an
unrun image file) are read in a background call and shown when they arrive, unless the
user asked for something else meanwhile (then the late answer is dropped).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Slot

from gui.flags import flag_text
from gui.image_cache import ImageCache, from_event_images, from_store, read_rgb
from gui.inspector import Inspector, InspectorImages
from gui.session import Session
from gui.worker import BackgroundPool


def item_title(image_name: str, metric: str, attack: str) -> str:
    return f"<b>{image_name}</b> · {metric} · {attack}"


class ItemDisplay(QObject):
    """Keeps the inspector, curves, thumbnails and table on the same item.

    Args:
        session: the state; window: gives ``images``, ``results``, ``curves``, ``log``.
    """

    def __init__(self, session: Session, inspector: Inspector, window: Any, pool: BackgroundPool) -> None:
        super().__init__(window)
        self.session, self.inspector, self.w, self.pool = session, inspector, window, pool
        self.cache = ImageCache()
        self.shown_item: str | None = None
        self._request: tuple[Any, ...] | None = None   # what the inspector waits for
        self._follow: str | None = None
        session.folder_changed.connect(self._on_reset)
        session.experiment_changed.connect(self._on_experiment)
        session.run_started.connect(self._on_run_started)
        session.item_done.connect(self._on_item_done)
        session.running_changed.connect(self._on_running)
        session.item_started.connect(lambda _ev: self._retitle(self.shown_item) if self.shown_item else None)
        inspector.defence.currentTextChanged.connect(self._on_defence_chosen)
        self._select = True

    # ---- session changes ----------------------------------------------------------------
    def _on_reset(self, *_: Any) -> None:
        self.cache.clear()
        self.clear("No item selected — run an experiment or pick a row in Results")

    def _on_experiment(self) -> None:
        if self.shown_item is not None and self.shown_item not in self.session.items:
            self.clear("No item selected — pick a row in Results")

    def _on_run_started(self, _ev: Any) -> None:
        if self.inspector.follow.isChecked():
            self.clear("Run started — each item shows here as it finishes")

    def _on_running(self, running: bool) -> None:
        """At the end of a run the curve goes back to the item the inspector shows."""
        if not running and self.shown_item is not None:
            self._show_curve(self.shown_item)
            self._retitle(self.shown_item)

    @Slot(str)
    def _on_defence_chosen(self, label: str) -> None:
        """The user picked another defence in the inspector: the table follows."""
        if self.shown_item is not None and label:
            self.w.results.select_item(self.shown_item, label)

    def clear(self, text: str) -> None:
        self.shown_item = None
        self._request = None
        self._follow = None
        self.inspector.clear(text)

    def item_finished(self, ev: Any) -> None:
        """An item's images arrived with its event: keep them, follow the run if asked."""
        it = ev.item
        if ev.images is not None:
            note = ev.rows[0].get("note", "") if ev.rows else ""
            self.cache.put(it.id, from_event_images(item_title(it.image_name, it.metric.label, it.attack.label),
                                                    ev.images, note))

    def _on_item_done(self, item_id: str) -> None:
        if self.inspector.follow.isChecked() and item_id in self.cache:
            # next event-loop turn: keeps each slot short so the GUI never stalls
            self._follow = item_id
            QTimer.singleShot(0, self._show_followed)

    @Slot()
    def _show_followed(self) -> None:
        if self._follow is not None:
            self.show_item(self._follow, select=True)
            self._follow = None

    # ---- showing ------------------------------------------------------------------------
    def show_item(self, item_id: str, defence: str | None = None, *, select: bool = True) -> bool:
        """Show an item in the inspector and its recorded curve; False if unknown."""
        info = self.session.items.get(item_id)
        if info is None:
            return False
        self.shown_item = item_id
        self._select = select
        if select:
            self.w.images.select_path(info.image)
        images = self.cache.get(item_id)
        if images is not None:
            self._request = None
            self._show(item_id, images, defence)   # selects the row with the inspector's defence
            return True
        if info.status == "failed":
            self._request = None
            if select:
                self.w.results.select_item(item_id, None)
            self.inspector.clear(f"{item_title(info.image_name, info.metric, info.attack)} failed",
                                 f"[{info.stage}] {info.error}")
            return True
        s = self.session
        rows = s.rows_of(item_id)
        if select:
            # the row now (the images come later); the same defence as the inspector picks
            labels = list(rows)
            pick = defence if defence in labels else next((lb for lb in labels if lb != "none"), None)
            self.w.results.select_item(item_id, pick)
        if s.store_path is None or s.exp_id is None or info.status != "done":
            self._request = ("file", info.image)
            self._read_file(info.image)
            return True
        labels = sorted(k for k, r in rows.items() if not r.get("error"))
        store_path, exp_id = s.store_path, s.exp_id
        item = {"item_id": item_id, "image": info.image}
        title = item_title(info.image_name, info.metric, info.attack)
        key = ("item", item_id, defence)

        def read() -> tuple[tuple[Any, ...], Any]:
            from engine.store.db import ResultStore

            with ResultStore(store_path, readonly=True) as store:
                return key, from_store(store, exp_id, item, labels, title)

        self._request = key
        self.pool.call(read, self._on_read, self._on_failed)
        return True

    def show_image(self, path: str) -> None:
        """A thumbnail was chosen: its item if there is one, else the file itself."""
        item_id = self.session.item_for_image(path)
        if item_id is not None and self.show_item(item_id):
            return
        self.shown_item = None
        self._request = ("file", path)
        self._read_file(path)

    def _read_file(self, path: str) -> None:
        self.pool.call(lambda: (("file", path), read_rgb(path)), self._on_read, self._on_failed)

    @Slot(object)
    def _on_read(self, result: tuple[tuple[Any, ...], Any]) -> None:
        key, images = result
        if key[0] == "item" and images.attacked is not None:
            self.cache.put(key[1], images)
        if key != self._request:
            return  # the user has moved on, or the folder changed
        self._request = None
        if key[0] == "item":
            self._show(key[1], images, key[2])
        elif images is not None:
            status = self.session.image_status(key[1])
            text = {"pending": "not run yet", "running": "running…"}.get(status.state, status.state)
            self.inspector.show_images(InspectorImages(f"<b>{Path(key[1]).name}</b> ({text})", images, None))
            if status.message:
                self.inspector.scores.setText(status.message.replace("\n", "<br>"))

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._request = None
        self.w.log.log("error", f"cannot read the images: {message}")

    def _show(self, item_id: str, images: InspectorImages, defence: str | None) -> None:
        s = self.session
        rows = s.rows_of(item_id)
        self.inspector.show_images(images, defence, rows)
        if self._select:   # the table's row is the inspector's item and defence
            self.w.results.select_item(item_id, self.inspector.current_defence())
        flagged = next((flag_text(r) for r in rows.values() if flag_text(r)), "")
        self.inspector.set_flag(flagged)
        self._retitle(item_id)
        if s.current_item is None:
            self._show_curve(item_id)

    def _retitle(self, item_id: str) -> None:
        """During a run, the inspector says it shows the last finished item (the curve
        shows the one in flight)."""
        im = self.inspector.images
        if im is None or item_id != self.shown_item:
            return
        running = self.session.running and self.session.current_item not in (None, item_id)
        prefix = "<span style='color:#188038'>last finished:</span> " if running else ""
        self.inspector.title.setText(prefix + im.title + (f"   <i>{im.note}</i>" if im.note else ""))

    def _show_curve(self, item_id: str) -> None:
        s = self.session
        info = s.items.get(item_id)
        if info is not None and item_id in s.steps:
            self.w.curves.show_steps(info.image_name, info.metric, s.clean_scores.get(item_id), s.steps[item_id])
