"""Images panel: the folder under study, as thumbnails with a per-image run status."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal, Slot
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

from engine.experiment import find_images
from gui.worker import BackgroundCall

THUMB = 56
STATUS_COLORS = {"pending": "#9aa0a6", "running": "#1a73e8", "done": "#188038", "error": "#d93025",
                 "unreadable": "#d93025"}
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


class ImagesPanel(QWidget):
    """Open a folder (dialog, drag and drop, recent), list its images with a status."""

    folderChosen = Signal(str)
    imageActivated = Signal(str)      # path
    sampleRequested = Signal()
    bannerDismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.folder: str | None = None
        self.recent: list[str] = []
        self._thumbs: dict[str, QPixmap] = {}
        self._errors: dict[str, str] = {}
        self._loader: BackgroundCall | None = None

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
        dismiss = QPushButton("Dismiss")
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
        self.recent_button.setText("Recent")
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

        self.list = QListWidget()
        self.list.setObjectName("thumbnails")
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setSpacing(1)
        self.list.setUniformItemSizes(True)
        self.list.setWordWrap(False)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.currentItemChanged.connect(self._on_current)
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
        """Show the images of ``folder`` (all found, or ``images``) as pending."""
        folder = str(Path(folder).resolve())
        paths = images if images is not None else find_images(folder)
        self.folder = folder
        self.folder_label.setText(f"<b>{Path(folder).name}</b> — {len(paths)} image(s)<br>"
                                  f"<span style='color:#5f6368'>{folder}</span>")
        self.folder_label.setToolTip(folder)
        self._errors.clear()
        self.list.clear()
        for p in paths:
            item = QListWidgetItem(Path(p).name)
            item.setData(PATH_ROLE, p)
            item.setData(STATUS_ROLE, "pending")
            self.list.addItem(item)
            self._paint(item)
        self._update_summary()
        self.add_recent(folder)
        self._load_thumbnails(paths)
        self.folderChosen.emit(folder)
        return paths

    def paths(self) -> list[str]:
        return [self.list.item(i).data(PATH_ROLE) for i in range(self.list.count())]

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
    def _load_thumbnails(self, paths: list[str]) -> None:
        todo = [p for p in paths if p not in self._thumbs]
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
        for i in range(self.list.count()):
            self._paint(self.list.item(i))

    def wait_thumbnails(self, ms: int = 10_000) -> None:
        if self._loader is not None:
            self._loader.wait(ms)

    # ---- status ----------------------------------------------------------------------------
    def _item(self, path: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            it = self.list.item(i)
            if it.data(PATH_ROLE) == path:
                return it
        return None

    def set_status(self, path: str, status: str, message: str = "") -> None:
        item = self._item(path)
        if item is None:
            return
        item.setData(STATUS_ROLE, status)
        if message:
            self._errors[path] = message
        elif status == "done":
            self._errors.pop(path, None)
        self._paint(item)
        self._update_summary()

    def status(self, path: str) -> str | None:
        item = self._item(path)
        return item.data(STATUS_ROLE) if item else None

    def error(self, path: str) -> str | None:
        return self._errors.get(path)

    def reset_status(self) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setData(STATUS_ROLE, "pending")
            self._paint(item)
        self._update_summary()

    def _paint(self, item: QListWidgetItem) -> None:
        path = item.data(PATH_ROLE)
        status = item.data(STATUS_ROLE) or "pending"
        base = self._thumbs.get(path) or _placeholder()
        pm = QPixmap(THUMB, THUMB)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.drawPixmap((THUMB - base.width()) // 2, (THUMB - base.height()) // 2, base)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QColor("white"))
        p.setBrush(QBrush(QColor(STATUS_COLORS.get(status, "#9aa0a6"))))
        p.drawEllipse(THUMB - 15, THUMB - 15, 12, 12)
        p.end()
        item.setIcon(QIcon(pm))
        err = self._errors.get(path)
        name = Path(path).name
        item.setText(f"{name}\n{status}" + (f": {err.splitlines()[0][:60]}" if err and status == "error" else ""))
        item.setForeground(QColor("#b3261e") if status == "error" else QColor("#202124"))
        item.setToolTip(f"{path}\nstatus: {status}" + (f"\n{err}" if err else ""))

    def _update_summary(self) -> None:
        counts: dict[str, int] = {}
        for i in range(self.list.count()):
            s = self.list.item(i).data(STATUS_ROLE) or "pending"
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
        from engine.experiment import IMAGE_SUFFIXES

        dirs = [p for p in paths if Path(p).is_dir()]
        if dirs:
            self.set_folder(dirs[0])
            return
        files = [str(Path(p).resolve()) for p in paths if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        if files:
            self.set_folder(str(Path(files[0]).parent), sorted(files))
