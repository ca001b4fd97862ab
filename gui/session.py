"""The desktop app's state, in plain Python (no Qt): one owner for what every panel shows.

:class:`Session` owns the folder under study, the result store and the experiment shown,
and the bookkeeping of the run in flight (items, attack steps, clean scores, per-image
status, the item to follow). It consumes the engine's events (:mod:`engine.core.events`) and
tells its observers what changed through :class:`Observable` lists; the Qt side only
adapts those notifications to widgets. Opening a folder, opening a store, choosing an
experiment and starting a run all go through here, so no panel can keep a stale copy.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from engine.core.events import (
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
from engine.spec.experiment import Experiment
from gui.flags import flag_row
from gui.session_types import (
    ImageStatus,
    ItemState,
    Observable,
    failure_row,
    step_point,
    image_status,
    stored_series,
)

__all__ = ["ImageStatus", "ItemState", "Observable", "Session", "image_status"]


def _attack_iterations(exp: Experiment) -> dict[str, int]:
    from engine.attacks import ATTACKS
    from engine.run.runtime import merged_params

    out: dict[str, int] = {}
    for spec in exp.attacks:
        try:
            cls = ATTACKS.get(spec.name)
            params = {s.name: s.default for s in cls.param_specs()}
            params.update(merged_params(cls, spec))
            out[spec.label] = int(params.get("iters", 1) or 1)
        except Exception:  # noqa: BLE001 - progress just gets coarser
            out[spec.label] = 1
    return out


class Session:
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
        self.done_before = 0
        self.finished = 0
        self.unreadable: dict[str, str] = {}    # image → why it cannot be read (header check)
        self._iters: dict[str, int] = {}
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
        """Make ``exp_id`` of ``path`` the experiment shown, with what is stored of it."""
        from engine.store.db import ResultStore

        rows: list[dict[str, Any]] = []
        stored_items: list[dict[str, Any]] = []
        self.store_path, self.exp_id = Path(path), exp_id
        try:
            if Path(path).exists():
                with ResultStore(path, readonly=True) as store:
                    self.stored_experiments = store.experiments()
                    if any(e["id"] == exp_id for e in self.stored_experiments):
                        exp = exp or store.experiment(exp_id)
                        rows, stored_items = store.rows(exp_id), store.items(exp_id)
        except Exception as exc:  # noqa: BLE001
            self.message.emit("error", f"cannot read {path}: {exc}")
        self.experiment = exp
        self._track(exp)
        self.rows = [flag_row(r) for r in rows]
        for item in stored_items:
            info = self.items.get(item["item_id"])
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
        return len(rows)

    def _track(self, exp: Experiment | None) -> None:
        self.items, self.by_image, self.steps, self.clean_scores = {}, {}, {}, {}
        self._started = {}
        self.current_item = self.followed = None
        if exp is None:
            return
        from engine.run.identity import content_items  # ids by content, as the run's events carry

        for it in content_items(exp, cache=self._hash_cache()):
            self.items[it.id] = ItemState(it.id, it.image, it.image_name, it.metric.label, it.attack.label)
            self.by_image.setdefault(it.image, []).append(it.id)
        self._iters = _attack_iterations(exp)

    def _hash_cache(self) -> dict:
        """The image hashes the shown store holds (read only), so a folder's images are
        decoded once; empty when there is no store yet."""
        from engine.store.db import ResultStore

        path = getattr(self, "store_path", None)
        if path is None or not Path(path).exists():
            return {}
        try:
            with ResultStore(path, readonly=True) as store:
                return store.cached_hashes()
        except Exception:  # noqa: BLE001 - no cache: the images are decoded
            return {}

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

    # ------------------------------------------------------------------ running
    def begin_run(self, exp: Experiment) -> Path:
        """Make ``exp`` the experiment shown and return the store it will write to (in
        :attr:`output_dir`). What is stored of it already (a resume) is shown at once.

        Raises:
            RuntimeError: a run is in progress.  OSError: the output folder cannot be made.
        """
        if self.running:
            raise RuntimeError("a run is in progress")
        from engine.run.driver import store_path_for

        out = Path(self.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.running = True
        self.finished = self.done_before = 0
        self._load(store_path_for(out), exp.id, exp)
        self.running_changed.emit(True)
        return self.store_path  # type: ignore[return-value]

    def retarget(self, exp: Experiment) -> None:
        """The run in flight computes ``exp`` instead (its attacks were calibrated to a
        budget in the worker, which changes the experiment's identity)."""
        if self.running and self.store_path is not None:
            self._load(self.store_path, exp.id, exp)

    def handle(self, ev: Any) -> None:
        """Consume one engine event (in the GUI thread)."""
        handler = self._handlers.get(type(ev))
        if handler is not None:
            handler(self, ev)

    def _on_run_started(self, ev: RunStarted) -> None:
        self.done_before = ev.total - ev.pending
        self._refresh_stored()
        self.run_started.emit(ev)

    def _on_item_started(self, ev: ItemStarted) -> None:
        info = self.items.get(ev.item.id)
        self._started[ev.item.id] = ev
        self.current_item = ev.item.id
        self._defences_done = 0
        if info is not None:
            info.status = "running"
            self._emit_image(info.image)
        self.item_started.emit(ev)
        self.progress.emit(self.finished, 0.0)

    def _follow(self, item_id: str) -> None:
        """A batch starts all its items at once, then streams one item's events: the item
        in flight is the one whose events arrive."""
        if item_id != self.current_item and item_id in self._started:
            self.current_item = item_id
            self.item_started.emit(self._started[item_id])

    def _on_clean(self, ev: CleanScored) -> None:
        self._follow(ev.item_id)
        self.clean_scores[ev.item_id] = ev.score
        self.clean_scored.emit(ev.item_id, ev.score)

    def _on_step(self, ev: AttackStep) -> None:
        self._follow(ev.item_id)
        self.steps.setdefault(ev.item_id, {}).setdefault(ev.attack, []).append(step_point(ev.step))
        self.step.emit(ev)
        n = self._iters.get(ev.attack, 1)
        self.progress.emit(self.finished, 0.85 * min(1.0, (ev.step.iteration + 1) / (n + 1)))

    def _on_attack_done(self, ev: AttackDone) -> None:
        self.progress.emit(self.finished, 0.85)

    def _on_defence_done(self, ev: DefenceDone) -> None:
        self._defences_done += 1
        n = len(self.experiment.all_defences) if self.experiment else 1
        self.progress.emit(self.finished, 0.85 + 0.15 * self._defences_done / max(1, n))
        if ev.row.get("error"):
            self.message.emit("error", f"{ev.row.get('image_name')}: defence {ev.defence}: {ev.row['error']}")

    def _on_item_finished(self, ev: ItemFinished) -> None:
        info = self.items.get(ev.item.id)
        rows = [flag_row(r) for r in ev.rows]
        self.rows.extend(rows)
        self.finished += 1
        if info is not None:
            info.status = "done"
            self._emit_image(info.image)
        self.rows_added.emit(rows)
        self.progress.emit(self.finished, 0.0)
        self.followed = ev.item.id
        self.item_done.emit(ev.item.id)

    def _on_item_failed(self, ev: ItemFailed) -> None:
        it = ev.item
        info = self.items.get(it.id) or ItemState(it.id, it.image, it.image_name, it.metric.label, it.attack.label)
        info.status, info.error, info.stage = "failed", ev.error.strip() or "failed", ev.stage
        self.items[it.id] = info
        self.finished += 1
        first = info.error.splitlines()[0]
        self.message.emit("error", f"{it.image_name} · {it.metric.label} · {it.attack.label}: [{ev.stage}] {first}")
        row = failure_row(info)
        self.rows.append(row)
        self._emit_image(info.image)
        self.rows_added.emit([row])
        self.progress.emit(self.finished, 0.0)

    def _on_run_finished(self, ev: RunFinished) -> None:
        state = "cancelled" if ev.cancelled else "finished"
        before = self.done_before
        text = (f"{ev.finished} item(s) done, {ev.failed} failed in {ev.seconds:.1f} s"
                + (f"; {before} item(s) were already in the store" if before else ""))
        for info in self.items.values():
            if info.status == "running":
                info.status = "pending"
                self._emit_image(info.image)
        self.message.emit("warning" if ev.cancelled else ("error" if ev.failed else "ok"), f"run {state}: {text}")
        self._refresh_stored()
        self.run_finished.emit(ev, text)

    def run_error(self, message: str) -> None:
        """The run as a whole could not go on (the worker's message)."""
        self.message.emit("error", f"the run stopped: {message}")

    def end_run(self) -> None:
        """The worker has stopped (always called last)."""
        if self.running:
            self.running = False
            self.current_item = None
            self.running_changed.emit(False)

    def _refresh_stored(self) -> None:
        from engine.store.db import ResultStore

        if self.store_path is None or not self.store_path.exists():
            return
        try:
            with ResultStore(self.store_path, readonly=True) as store:
                self.stored_experiments = store.experiments()
        except Exception:  # noqa: BLE001 - the combo just keeps its entries
            return
        self.experiment_changed.emit()

    _handlers: ClassVar[dict[type, Callable[[Session, Any], None]]] = {
        RunStarted: _on_run_started, ItemStarted: _on_item_started, CleanScored: _on_clean, AttackStep: _on_step,
        AttackDone: _on_attack_done, DefenceDone: _on_defence_done, ItemFinished: _on_item_finished,
        ItemFailed: _on_item_failed, RunFinished: _on_run_finished,
    }
