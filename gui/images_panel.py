"""Images panel: the folder under study, as thumbnails with a per-image run status."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.spec.folders import find_images
from gui.elided_label import ElidedLabel
from gui.worker import BackgroundCall

THUMB = 56
STATUS_COLORS = {"pending": "#9aa0a6", "running": "#1a73e8", "done": "#188038", "error": "#d93025",
                 "partial": "#e37400", "unreadable": "#d93025"}
PATH_ROLE = Qt.ItemDataRole.UserRole
STATUS_ROLE = Qt.ItemDataRole.UserRole + 1


def load_thumbnails(paths: list[str], size: int = THUMB) -> dict[str, Any]:
    """path → QImage thumbnail, or an error string (runs in a worker thread: QImage only)."""
    from PIL import Image, ImageOps

    out: dict[str, Any] = {}
    for p in paths:
        try:
            with Image.open(p) as im:
                im.draft("RGB", (size * 2, size * 2))
                im = ImageOps.exif_transpose(im).convert("RGB")
                im.thumbnail((size, size))
                data = im.tobytes()
                qimg = QImage(data, im.width, im.height, 3 * im.width, QImage.Format.Format_RGB888).copy()
            out[p] = qimg
        except Exception as exc:  # noqa: BLE001 - shown as the item's tooltip
            out[p] = f"{type(exc).__name__}: {exc}"
    return out


def _placeholder() -> QPixmap:
    pm = QPixmap(THUMB, THUMB)
    pm.fill(QColor("#e8eaed"))
    return pm


def _with_dot(base: QPixmap, status: str) -> QPixmap:
    """``base`` centred on a thumbnail-sized pixmap with the status colour's dot."""
    pm = QPixmap(THUMB, THUMB)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.drawPixmap((THUMB - base.width()) // 2, (THUMB - base.height()) // 2, base)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QColor("white"))
    p.setBrush(QBrush(QColor(STATUS_COLORS.get(status, "#9aa0a6"))))
    p.drawEllipse(THUMB - 15, THUMB - 15, 12, 12)
    p.end()
    return pm


def _reason(message: str, path: str) -> str:
    """The reason of an item's first error line, without the stage and the file's name
    (the thumbnail names the file already)."""
    line = message.splitlines()[0]
    line = line.split(": failed ", 1)[-1]          # "niqe · ifgsm: failed [load] …"
    if line.startswith("[") and "] " in line:
        line = line.split("] ", 1)[1]
    for prefix in (path, Path(path).name):
        if line.startswith(prefix + ": "):
            return line[len(prefix) + 2:]
    return line


class ImagesPanel(QWidget):
    """Open a folder (dialog, drag and drop, recent), list its images with a status."""

    folderChosen = Signal(str)        # the user asked for a folder (when controlled, show_folder answers)
    imageActivated = Signal(str)      # path
    sampleRequested = Signal()
    bannerDismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.folder: str | None = None
        self.recent: list[str] = []
        self.controlled = False          # True: a session decides what is shown (set_folder only asks)
        self.requested_images: list[str] | None = None
        self._thumbs: dict[str, QPixmap] = {}
        self._errors: dict[str, str] = {}
        self._summaries: dict[str, str] = {}
        self._items: dict[str, QListWidgetItem] = {}
        self._icons: dict[str, QIcon] = {}
        self._loader: BackgroundCall | None = None
        self._loading: list[str] = []

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)

        self.banner = QFrame()
        self.banner.setObjectName("banner")
        self.banner.setFrameShape(QFrame.Shape.StyledPanel)
        bl = QVBoxLayout(self.banner)
        bl.setContentsMargins(8, 6, 8, 6)
        text = QLabel("<b>New here?</b> Load four sample photos with a ready experiment "
                      "(NIQE · I-FGSM · JPEG + median blur, under a minute on a laptop CPU), "
                      "then press <b>Run</b>.")
        text.setWordWrap(True)
        bl.addWidget(text)
        row = QHBoxLayout()
        self.sample_button = QPushButton("Load samples")
        self.sample_button.setObjectName("load_samples")
        self.sample_button.clicked.connect(self.sampleRequested)
        dismiss = QToolButton()
        dismiss.setText("✕")
        dismiss.setToolTip("Dismiss")
        dismiss.clicked.connect(self._dismiss_banner)
        row.addWidget(self.sample_button)
        row.addWidget(dismiss)
        row.addStretch(1)
        bl.addLayout(row)
        self.banner.setVisible(False)
        lay.addWidget(self.banner)

        top = QHBoxLayout()
        self.open_button = QPushButton("Open folder…")
        self.open_button.setObjectName("open_folder")
        self.open_button.clicked.connect(self.choose_folder)
        top.addWidget(self.open_button, 1)
        self.recent_button = QToolButton()
        self.recent_button.setText("Recent ▾")
        self.recent_button.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")
        self.recent_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.recent_menu = QMenu(self)
        self.recent_button.setMenu(self.recent_menu)
        top.addWidget(self.recent_button)
        lay.addLayout(top)

        self.folder_label = QLabel("Drop a folder of images here")
        self.folder_label.setObjectName("folder_label")
        self.folder_label.setWordWrap(True)
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.folder_label)
        self.folder_path = ElidedLabel("", min_width=40, max_hint=200, elide=Qt.TextElideMode.ElideMiddle)
        self.folder_path.setObjectName("folder_path")
        self.folder_path.setStyleSheet("color:#5f6368")
        self.folder_path.setVisible(False)
        lay.addWidget(self.folder_path)

        self.list = QListWidget()
        self.list.setObjectName("thumbnails")
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setSpacing(1)
        self.list.setUniformItemSizes(True)
        self.list.setWordWrap(False)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.verticalScrollBar().valueChanged.connect(self._load_visible)
        lay.addWidget(self.list, 1)
        self.summary = QLabel()
        self.summary.setObjectName("images_summary")
        lay.addWidget(self.summary)
        self._update_recent_menu()

    # ---- folder --------------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = self.folder or (self.recent[0] if self.recent else str(Path.home()))
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", start)
        if folder:
            self.set_folder(folder)

    def set_folder(self, folder: str, images: list[str] | None = None) -> list[str]:
        """Open ``folder`` (all its images, or ``images``). When :attr:`controlled`, this
        only asks (``folderChosen``) and the owner answers with :meth:`show_folder`."""
        folder = str(Path(folder).resolve())
        if not self.controlled:
            self.show_folder(folder, images if images is not None else find_images(folder))
        self.requested_images = images
        self.folderChosen.emit(folder)
        self.requested_images = None
        return self.paths()

    def show_folder(self, folder: str, paths: list[str]) -> None:
        """Show the images of ``folder`` as pending; thumbnails load lazily as they scroll in."""
        self.folder = folder
        self.folder_label.setText(f"<b>{Path(folder).name}</b> — {len(paths)} image(s)")
        self.folder_label.setToolTip(folder)
        self.folder_path.setText(folder)   # elided in the middle: a long path never widens the dock
        self.folder_path.setVisible(True)
        self._errors.clear()
        self._summaries.clear()
        self._items.clear()
        self.list.setUpdatesEnabled(False)
        self.list.clear()
        icon = self._status_icon("pending")
        for p in paths:
            item = QListWidgetItem(icon, Path(p).name)
            item.setData(PATH_ROLE, p)
            item.setData(STATUS_ROLE, "pending")
            item.setToolTip(f"{p}\nstatus: pending")
            self.list.addItem(item)
            self._items[p] = item
        self.list.setUpdatesEnabled(True)
        self._update_summary()
        self.add_recent(folder)
        QTimer.singleShot(0, self._load_visible)

    def paths(self) -> list[str]:
        return list(self._items)

    def add_recent(self, folder: str) -> None:
        self.recent = [folder] + [f for f in self.recent if f != folder]
        self.recent = self.recent[:10]
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        for f in self.recent:
            act = self.recent_menu.addAction(f)
            act.setData(f)
            act.triggered.connect(self._open_recent)
        self.recent_button.setEnabled(bool(self.recent))

    @Slot()
    def _open_recent(self) -> None:
        act = self.sender()
        folder = act.data() if act is not None else None
        if folder and Path(folder).is_dir():
            self.set_folder(folder)

    def show_banner(self, show: bool) -> None:
        self.banner.setVisible(show)

    def _dismiss_banner(self) -> None:
        self.banner.setVisible(False)
        self.bannerDismissed.emit()

    # ---- thumbnails ------------------------------------------------------------------------
    def _visible_paths(self) -> list[str]:
        """Paths of the rows in view (plus a screenful ahead) that have no thumbnail yet."""
        n = self.list.count()
        if n == 0:
            return []
        top = self.list.indexAt(self.list.viewport().rect().topLeft()).row()
        bottom = self.list.indexAt(self.list.viewport().rect().bottomLeft()).row()
        top = max(0, top)
        bottom = n - 1 if bottom < 0 else bottom
        end = min(n, bottom + 1 + (bottom - top + 1))
        return [p for p in (self.list.item(i).data(PATH_ROLE) for i in range(top, end)) if p not in self._thumbs]

    @Slot()
    def _load_visible(self, *_: Any) -> None:
        if self._loader is not None and self._loader.running:
            return
        todo = self._visible_paths()[:64]
        if not todo:
            return
        loader = BackgroundCall(lambda: load_thumbnails(todo), self)
        loader.finished.connect(self._on_thumbnails)
        self._loader = loader
        loader.start()

    @Slot(object)
    def _on_thumbnails(self, result: dict[str, Any]) -> None:
        for p, value in result.items():
            if isinstance(value, QImage):
                self._thumbs[p] = QPixmap.fromImage(value)
            else:
                self._thumbs[p] = _placeholder()
                self._errors.setdefault(p, f"cannot read: {value}")
            item = self._items.get(p)
            if item is not None:
                self._paint(item)
        QTimer.singleShot(0, self._load_visible)   # the next screenful, if any

    def wait_thumbnails(self, ms: int = 10_000) -> None:
        """Block until the thumbnails in view are loaded (tests, screenshots)."""
        from PySide6.QtCore import QCoreApplication, QDeadlineTimer

        deadline = QDeadlineTimer(ms)
        QCoreApplication.processEvents()
        while not deadline.hasExpired():
            if self._loader is not None:
                self._loader.wait(max(1, deadline.remainingTime()))
            QCoreApplication.processEvents()
            if not self._visible_paths():
                return
            self._load_visible()

    # ---- status ----------------------------------------------------------------------------
    def _item(self, path: str) -> QListWidgetItem | None:
        return self._items.get(path)

    def set_status(self, path: str, status: str, message: str = "", summary: str = "", *,
                   count: bool = True) -> None:
        """Show ``status`` for an image; ``message`` is its full text (tooltip, status bar)."""
        item = self._item(path)
        if item is None:
            return
        item.setData(STATUS_ROLE, status)
        if message:
            self._errors[path] = message
        elif status in ("done", "pending", "running"):
            self._errors.pop(path, None)
        self._summaries[path] = summary
        self._paint(item)
        if count:
            self._update_summary()

    def set_image_statuses(self, statuses: dict[str, Any]) -> None:
        """Every image at once: those in ``statuses`` (ImageStatus) and the rest pending."""
        for path, item in self._items.items():
            st = statuses.get(path)
            if st is not None:
                self.set_status(path, st.state, st.message, st.summary, count=False)
            elif item.data(STATUS_ROLE) != "pending" or self._errors.get(path) or self._summaries.get(path):
                self.set_status(path, "pending", count=False)
        self._update_summary()

    def set_image_status(self, path: str, st: Any) -> None:
        """Adapt a :class:`gui.session.ImageStatus` (per-item counts and full messages)."""
        self.set_status(path, st.state, st.message, st.summary)

    def status(self, path: str) -> str | None:
        item = self._item(path)
        return item.data(STATUS_ROLE) if item else None

    def error(self, path: str) -> str | None:
        return self._errors.get(path)

    def reset_status(self) -> None:
        for item in self._items.values():
            item.setData(STATUS_ROLE, "pending")
            self._paint(item)
        self._update_summary()

    def _status_icon(self, status: str) -> QIcon:
        """The placeholder with a status dot (shared by every image without a thumbnail)."""
        if status not in self._icons:
            self._icons[status] = QIcon(_with_dot(_placeholder(), status))
        return self._icons[status]

    def _paint(self, item: QListWidgetItem) -> None:
        path = item.data(PATH_ROLE)
        status = item.data(STATUS_ROLE) or "pending"
        base = self._thumbs.get(path)
        item.setIcon(QIcon(_with_dot(base, status)) if base is not None else self._status_icon(status))
        err = self._errors.get(path)
        summary = self._summaries.get(path, "")
        name = Path(path).name
        if summary:
            text = f"{name}\n{summary}"   # e.g. "1/2 done · 1 failed": short enough not to be elided
        elif err and status in ("error", "partial", "unreadable"):
            text = f"{name}\n{status}: {_reason(err, path)[:60]}"
        else:
            text = f"{name}\n{status}"
        item.setText(text)
        item.setForeground(QColor("#b3261e") if status in ("error", "partial", "unreadable") else QColor("#202124"))
        item.setToolTip(f"{path}\nstatus: {status}" + (f"\n{err}" if err else ""))

    def _update_summary(self) -> None:
        counts: dict[str, int] = {}
        for item in self._items.values():
            s = item.data(STATUS_ROLE) or "pending"
            counts[s] = counts.get(s, 0) + 1
        self.summary.setText("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no images")

    def _on_current(self, cur: QListWidgetItem | None, _prev: Any = None) -> None:
        if cur is not None:
            self.imageActivated.emit(cur.data(PATH_ROLE))

    def select_path(self, path: str) -> None:
        item = self._item(path)
        if item is not None and self.list.currentItem() is not item:
            self.list.blockSignals(True)
            self.list.setCurrentItem(item)
            self.list.blockSignals(False)

    # ---- drag and drop ------------------------------------------------------------------------
    def dragEnterEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        self.open_dropped(urls)
        event.acceptProposedAction()

    def open_dropped(self, paths: list[str]) -> None:
        """A dropped folder opens it; dropped image files open their folder with just them."""
        from engine.spec.folders import IMAGE_SUFFIXES

        dirs = [p for p in paths if Path(p).is_dir()]
        if dirs:
            self.set_folder(dirs[0])
            return
        files = [str(Path(p).resolve()) for p in paths if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        if files:
            self.set_folder(str(Path(files[0]).parent), sorted(files))
