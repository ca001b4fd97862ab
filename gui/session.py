"""The desktop app's state, in plain Python (no Qt): one owner for what every panel shows.

:class:`Session` owns the folder under study, the result store and the experiment shown;
its other half, :class:`gui.session_run.RunTracking`, the bookkeeping of the run in flight
(items, attack steps, clean scores, per-image status, the item to follow) from the engine's
events. It tells its observers what changed through :class:`Observable` lists; the Qt side
only adapts those notifications to widgets. Opening a folder, opening a store, choosing an
experiment and starting a run all go through here, so no panel can keep a stale copy.
No image is decoded here: items are named by the store's view or the run's events.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.core.events import ItemStarted
from engine.spec.experiment import Experiment
from gui.flags import flag_row
from gui.session_run import RunTracking, attack_iterations
from gui.session_types import (
    ImageStatus,
    ItemState,
    Observable,
    failure_row,
    image_status,
    stored_series,
)
from gui.stored_state import StoredState, read_stored

__all__ = ["ImageStatus", "ItemState", "Observable", "Session", "image_status"]


class Session(RunTracking):
    """Folder, store, experiment shown and the run in flight.

    Args:
        default_output: folder → the output folder used when the user chose none (the
            Qt side passes one under the user's data directory).

    Observers (each an :class:`Observable`; arguments in brackets):
        folder_changed (folder, images), output_changed (path), experiment_changed (),
        rows_reset (rows), rows_added (rows), image_changed (path, ImageStatus),
        images_changed ({path: ImageStatus} for every image with items; the rest are pending),
        run_started (RunStarted), item_started (ItemStarted), clean_scored (item_id, score),
        step (AttackStep), progress (finished, fraction_in_item), item_done (item_id),
        run_finished (RunFinished, text), running_changed (bool), message (level, text).
    """

    def __init__(self, default_output: Callable[[str | None], str]) -> None:
        self.default_output = default_output
        self.folder: str | None = None
        self.images: list[str] = []
        self.output_choice: str | None = None     # chosen by the user: wins over everything
        self.store_output: str | None = None      # the folder of a store the user opened
        self.store_path: Path | None = None
        self.exp_id: str | None = None
        self.experiment: Experiment | None = None
        self.stored_experiments: list[dict[str, Any]] = []
        self.items: dict[str, ItemState] = {}
        self.by_image: dict[str, list[str]] = {}
        self.steps: dict[str, dict[str, list[tuple[float, float]]]] = {}
        self.clean_scores: dict[str, float] = {}
        self._started: dict[str, ItemStarted] = {}
        self.rows: list[dict[str, Any]] = []
        self.running = False
        self.current_item: str | None = None
        self.followed: str | None = None
        self.reused = 0                         # items of the run in flight reused from the store
        self.finished = 0
        self.unreadable: dict[str, str] = {}    # image → why it cannot be read (header check)
        self._iters: dict[str, int] = {}
        self._by_index: dict[int, ItemState] = {}
        self._defences_done = 0
        for name in ("folder_changed", "output_changed", "experiment_changed", "rows_reset", "rows_added",
                     "image_changed", "images_changed", "run_started", "item_started", "clean_scored", "step", "progress",
                     "item_done", "run_finished", "running_changed", "message"):
            setattr(self, name, Observable())

    # ------------------------------------------------------------------ output
    @property
    def output_dir(self) -> str:
        """Where a run writes: the user's choice, else the opened store's folder, else the
        default for the folder (so a new folder never writes into an old folder's store)."""
        return self.output_choice or self.store_output or self.default_output(self.folder)

    def choose_output(self, path: str | None) -> None:
        """The user chose an output folder (None or "": follow the folder again)."""
        self.output_choice = str(path) if path else None
        self.output_changed.emit(self.output_dir)

    # ------------------------------------------------------------------ folder
    def open_folder(self, folder: str, images: list[str] | None = None, *, discover: bool = True) -> bool:
        """Study ``folder`` (all its images, or ``images``); shows the results already
        stored for it in its output folder, if any."""
        if self.running:
            self.message.emit("warning", "a run is in progress: open the folder when it has finished")
            return False
        from engine.spec.folders import find_images

        folder = str(Path(folder).resolve())
        self.folder = folder
        self.images = list(images) if images is not None else find_images(folder)
        self.unreadable = {}
        self.store_output = None
        self._forget_experiment()
        self.folder_changed.emit(folder, list(self.images))
        self.output_changed.emit(self.output_dir)
        self.experiment_changed.emit()
        self.rows_reset.emit([])
        self._emit_all_images()
        if discover:
            self._discover_store()
        return True

    def _forget_experiment(self) -> None:
        self.store_path = self.exp_id = self.experiment = None
        self.reused = 0
        self.stored_experiments = []
        self.items, self.by_image, self.steps, self.clean_scores, self.rows = {}, {}, {}, {}, []
        self.current_item = self.followed = None

    def _discover_store(self) -> None:
        """The latest experiment on this folder in the output folder's store, if any."""
        from engine.run.driver import store_path_for
        from engine.store.db import ResultStore

        path = store_path_for(self.output_dir)
        if not path.exists():
            return
        try:
            with ResultStore(path, readonly=True) as store:
                exps = store.experiments()
        except Exception:  # noqa: BLE001 - a broken store here just isn't shown
            return
        mine = [e for e in exps if self._is_this_folder(e["spec"])]
        if mine:
            latest = max(mine, key=lambda e: e["created"])
            self._load(path, latest["id"])

    def _is_this_folder(self, spec: dict[str, Any]) -> bool:
        root = spec.get("root")
        if root:
            return str(Path(root).resolve()) == self.folder
        imgs = spec.get("images") or []
        return bool(imgs) and str(Path(imgs[0]).resolve().parent) == self.folder

    # ------------------------------------------------------------------ store
    def open_store(self, path: str | Path, exp_id: str | None = None) -> bool:
        """Show a store's results (its latest experiment by default); computes nothing.
        The store's experiment's folder becomes the folder, the store's folder the output."""
        if self.running:
            self.message.emit("warning", "a run is in progress: open the store when it has finished")
            return False
        from engine.store.db import ResultStore, StoreError

        path = Path(path)
        try:
            with ResultStore(path, readonly=True) as store:
                exp_id = store.resolve(exp_id)
                exp = store.experiment(exp_id)
        except (StoreError, OSError, ValueError) as exc:
            self.message.emit("error", f"cannot open store {path}: {exc}")
            return False
        folder = exp.root or (str(Path(exp.images[0]).parent) if exp.images else None)
        if folder and Path(folder).is_dir():
            present = [p for p in exp.images if Path(p).exists()]
            self.open_folder(folder, present if len(present) == len(exp.images) else exp.images, discover=False)
        self.store_output = str(path.parent)
        self.output_changed.emit(self.output_dir)
        n = self._load(path, exp_id)
        self.message.emit("info", f"opened store {path}: experiment {exp_id[:8]}, {n} row(s)")
        return True

    def choose_experiment(self, exp_id: str) -> bool:
        """Show another experiment of the current store."""
        if exp_id == self.exp_id or self.store_path is None:
            return False
        if self.running:
            self.message.emit("warning", "a run is in progress: choose another experiment when it has finished")
            self.experiment_changed.emit()  # the combo goes back to the experiment shown
            return False
        return self.open_store(self.store_path, exp_id)

    def _load(self, path: Path, exp_id: str, exp: Experiment | None = None) -> int:
        """Make ``exp_id`` of ``path`` the experiment shown, with what is stored of it
        (database reads only: no image is decoded on the way)."""
        self.store_path, self.exp_id, self.reused = Path(path), exp_id, 0
        stored = read_stored(path, exp_id, exp)
        if stored.error:
            self.message.emit("error", stored.error)
        self.experiment = stored.experiment
        self._track(stored.experiment)
        self._apply(stored)
        return len(stored.rows)

    def _apply(self, stored: StoredState) -> None:
        """Show what the store holds of the experiment shown: rows, item states, curves."""
        self.stored_experiments = stored.experiments
        self.rows = [flag_row(r) for r in stored.rows]
        for item in stored.items:
            info = self._state_of(item["item_id"], item.get("idx"))
            if info is None:
                continue
            if item["status"] == "done":
                info.status = "done"
                self.steps[info.item_id] = stored_series(item)
                if item.get("clean_score") is not None:
                    self.clean_scores[info.item_id] = item["clean_score"]
            else:
                info.status, info.error, info.stage = "failed", item.get("error") or "", item.get("stage") or ""
                self.rows.append(failure_row(info))
        self.experiment_changed.emit()
        self.rows_reset.emit(list(self.rows))
        self._emit_all_images()

    def _track(self, exp: Experiment | None) -> None:
        """One :class:`ItemState` per item of ``exp``, by position. Their ids are by file
        name until the store or the run's events name each item's unit (its content id):
        :meth:`_state_of` takes the id over, so the GUI thread never decodes an image."""
        self.items, self.by_image, self.steps, self.clean_scores = {}, {}, {}, {}
        self._by_index = {}
        self._started = {}
        self.current_item = self.followed = None
        if exp is None:
            return
        for it in exp.items():
            info = ItemState(it.id, it.image, it.image_name, it.metric.label, it.attack.label)
            self.items[it.id] = self._by_index[it.index] = info
            self.by_image.setdefault(it.image, []).append(it.id)
        self._iters = attack_iterations(exp)

    def _state_of(self, item_id: str, index: int | None) -> ItemState | None:
        """The state of the item at ``index``, under the id the store or the run gives it."""
        info = self.items.get(item_id)
        if info is not None or index is None:
            return info
        info = self._by_index.get(index)
        if info is None:
            return None
        old = info.item_id
        if self.items.get(old) is info:
            del self.items[old]
        info.item_id = item_id
        self.items[item_id] = info
        self.by_image[info.image] = [item_id if i == old else i for i in self.by_image.get(info.image, [])]
        return info

    def experiments(self) -> list[tuple[str, str]]:
        """(id, description) of every experiment of the store, newest first, plus the one
        shown when it is not stored yet (a run about to start)."""
        out = []
        for e in reversed(self.stored_experiments):
            spec = e["spec"]
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e["created"]))
            desc = ", ".join(m["name"] for m in spec.get("metrics", [])) + " · " + \
                ", ".join(a["name"] for a in spec.get("attacks", []))
            state = f"{e['done']}/{e['total']} done" + (f", {e['failed']} failed" if e.get("failed") else "")
            out.append((e["id"], f"{e['id'][:8]}  {when}  {desc}  ({state})"))
        if self.exp_id and all(i != self.exp_id for i, _ in out):
            out.insert(0, (self.exp_id, f"{self.exp_id[:8]}  (new, starting)"))
        return out

    def experiment_state(self, exp_id: str | None = None) -> str:
        """``finished``, ``incomplete`` (cancelled or failed items) or ``new``."""
        exp_id = exp_id or self.exp_id
        e = next((e for e in self.stored_experiments if e["id"] == exp_id), None)
        if e is None:
            return "new"
        return "finished" if e["done"] == e["total"] else "incomplete"

    # ------------------------------------------------------------------ images
    def image_status(self, path: str) -> ImageStatus:
        st = image_status([self.items[i] for i in self.by_image.get(path, [])])
        problem = self.unreadable.get(path)
        if problem and st.state == "pending" and not st.done:
            # found by the header check when the folder opened: the run's own message
            return ImageStatus("unreadable", 0, 0, st.total, [f"[load] {problem}"])
        return st

    def set_unreadable(self, folder: str, problems: dict[str, str]) -> None:
        """The header check of ``folder``'s images answered: image → the message a run
        would give (:func:`engine.io.images.check_image`). Ignored if another folder is open."""
        if folder != self.folder:
            return
        self.unreadable = {p: m for p, m in problems.items() if p in self.images}
        for path in self.unreadable:
            self._emit_image(path)
        if self.unreadable:
            self.message.emit("warning", f"{len(self.unreadable)} image(s) cannot be read: "
                              + "; ".join(self.unreadable.values()))

    def _emit_image(self, path: str) -> None:
        self.image_changed.emit(path, self.image_status(path))

    def _emit_all_images(self) -> None:
        """One notification for every image (images without an item are pending)."""
        self.images_changed.emit({p: self.image_status(p) for p in self.images
                                  if p in self.by_image or p in self.unreadable})

    def item_for_image(self, path: str) -> str | None:
        """The item to show for an image: the last finished one, else any."""
        ids = self.by_image.get(path, [])
        done = [i for i in ids if self.items[i].status == "done"]
        return (done or ids or [None])[-1]

    def rows_of(self, item_id: str) -> dict[str, dict[str, Any]]:
        """defence label → row of an item."""
        return {(r.get("defence_label") or r.get("defence")): r for r in self.rows
                if r.get("item_id") == item_id and (r.get("defence_label") or r.get("defence"))}
