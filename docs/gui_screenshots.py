"""Screenshots for the README: the main window after a run at 1600×1000 and 1024×700, the
inspector in each compare mode (side by side, blink, swipe), the leaderboard tab, the plan
preview, the column chooser and the help page.

    QT_QPA_PLATFORM=offscreen python docs/gui_screenshots.py [--out docs] [--review DIR]

``--review DIR`` also writes every view at both sizes to DIR (to look at, not for the docs).
Under a real X server: ``xvfb-run -s "-screen 0 1600x1000x24" python docs/gui_screenshots.py``
with ``QT_QPA_PLATFORM=xcb``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
for _weights in (ROOT.parent / "shared" / "iqa-weights", Path("/work/shared/iqa-weights")):
    if _weights.is_dir():   # a worktree's parent has no shared/ folder
        os.environ.setdefault("TORCH_HOME", str(_weights))
        break

SIZES = [(1600, 1000), (1024, 700)]


def _settle(app, n: int = 30) -> None:
    for _ in range(n):
        app.processEvents()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--review", help="also write every view at both sizes here")
    ap.add_argument("--no-training", action="store_true", help="skip the training windows (a 1-minute training)")
    args = ap.parse_args()
    review = Path(args.review) if args.review else None
    if review:
        review.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from gui.app import _shrink_png, create_application

    app = create_application([])
    from PySide6.QtCore import QPoint, QSettings
    from PySide6.QtGui import QPainter

    from gui.catalog import scan_metrics
    from gui.main_window import SAMPLES_DIR, MainWindow

    tmp = Path(tempfile.mkdtemp(prefix="iqa-lab-shots-"))
    w = MainWindow(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat), scan=False)
    w.session.default_output = lambda folder: str(tmp / "runs" / Path(folder or "x").name)
    w.panel.set_metrics(scan_metrics())
    w.resize(*SIZES[0])
    w.show()
    w.images.show_banner(False)
    w.open_folder(str(SAMPLES_DIR))
    w.images.wait_thumbnails()
    w.panel.set_state({"metrics": ["niqe"],
                       "attacks": {"ifgsm": {"checked": True, "preset": "fine", "params": {"iters": 6}}},
                       "defences": {"jpeg": {"checked": True}, "median-blur": {"checked": True}},
                       "seed": 0, "device": "cpu", "save_images": True})

    def save(widget, name: str, folder: Path | None = None) -> Path:
        path = (folder or out) / name
        widget.grab().save(str(path))
        _shrink_png(str(path))
        print(f"screenshot: {path}")
        return path

    # 1. the plan preview: one defence cannot run (no trained FCN checkpoint)
    w.panel.defences.set_choice("fcn", checked=True, params={"checkpoint": str(tmp / "missing.pt")})
    w.start_run()      # refused: the plan (made in the background) opens with the reason
    while w.runs.plan_dialog is None:
        w.pool.wait()
        _settle(app)
    _settle(app)
    save(w.runs.plan_dialog, "gui-plan-preview.png")
    w.runs.plan_dialog.reject()
    w.panel.defences.set_choice("fcn", checked=False)

    # 2. the main window after a run
    w.start_run()
    while w.controller.running or w.panel.running:
        app.processEvents()
        time.sleep(0.02)
    rows = w.model.rows
    pick = next((r for r in rows if r.get("defence") == "jpeg" and "astronaut" in r.get("image_name", "")), None)
    if pick:
        w.display.show_item(pick["item_id"], "jpeg")
    w.pool.wait()
    _settle(app, 60)

    def views(width: int, height: int, folder: Path | None, main_name: str) -> None:
        """The main window, the leaderboard and the inspector's compare modes at one size."""
        w.resize(width, height)
        w.reset_layout()
        _settle(app, 60)
        w.inspector.fit()
        _settle(app, 20)
        tag = "" if folder is None else f"-{width}x{height}"
        save(w, main_name, folder)
        w.tabs.setCurrentWidget(w.leaderboard)
        w.leaderboard.wait()
        _settle(app, 60)
        save(w, f"gui-leaderboard{tag}.png", folder)
        w.tabs.setCurrentWidget(w.results)
        ins = w.inspector
        for mode in ("side", "blink", "swipe"):
            ins.compare.setCurrentIndex(ins.compare.findData(mode))
            if mode == "blink":
                ins.blink_timer.stop()
                ins.blink_step()            # the clean image, titled so
            if mode == "swipe":
                ins.set_swipe(0.5)
            _settle(app, 30)
            save(ins, f"gui-inspector-{mode}{tag}.png", folder)
        ins.compare.setCurrentIndex(ins.compare.findData("side"))

    # 2b. at 1600×1000 (the docs' set) and 1024×700 (main window only in the docs)
    views(*SIZES[0], None, "gui-main-after-run.png")
    w.resize(*SIZES[1])
    w.reset_layout()
    _settle(app, 60)
    save(w, "gui-main-1024x700.png")
    if review is not None:
        for width, height in SIZES:
            views(width, height, review, f"gui-main-{width}x{height}.png")
    w.resize(*SIZES[0])
    w.reset_layout()
    _settle(app, 30)

    # 3. the column chooser, open on the table's header
    w.results.set_preset("gains")
    menu = w.results.columns_menu()
    header = w.table.horizontalHeader()
    at = header.mapTo(w, QPoint(40, header.height()))
    menu.popup(header.mapToGlobal(QPoint(40, header.height())))
    _settle(app)
    shot = w.grab()
    painter = QPainter(shot)
    painter.drawPixmap(at, menu.grab())
    painter.end()
    path = out / "gui-column-chooser.png"
    shot.save(str(path))
    _shrink_png(str(path))
    print(f"screenshot: {path}")
    menu.close()

    # 4. the help page: score definitions
    page = w.help_pages.show_scores()
    page.resize(820, 640)
    _settle(app)
    save(page, "gui-help-scores.png")

    # 5. the training windows: FCN after a short real training, robust metric set up
    if not args.no_training:
        training(app, w, tmp, save)
    w.close()
    return 0


def training(app, w, tmp: Path, save) -> None:
    """Tools → Train FCN filter after 12 real epochs on the sample photos (CPU, ~1 min);
    Tools → Train robust metric filled in, before Start."""
    from gui.main_window import SAMPLES_DIR

    d = w.tools.open_fcn_training()
    d.folder.setText(str(SAMPLES_DIR))
    d.metric_box.setCurrentText("niqe")
    d.attack.setText("ifgsm:iters=2:eps=4/255")
    d.epochs.setValue(12)
    d.crop.setValue(64)
    d.device.setCurrentIndex(d.device.findData("cpu"))
    d.out.setText(str(tmp / "train" / "fcn.pt"))
    d.start()
    while d.running:
        app.processEvents()
        time.sleep(0.02)
    _settle(app, 30)
    save(d, "screenshot-train-fcn.png")
    d.close()
    r = w.tools.open_robust_training()
    r.folder.setText("")   # a data set with scores (mos.csv, KonIQ-10k…): the samples have none
    r.folder.setPlaceholderText("a data set folder: images with mos.csv, or KonIQ-10k as downloaded")
    r.metric_box.setCurrentText("linearity")
    r.method.setCurrentIndex(r.method.findData("at"))
    r.attack.setText("pgd:eps=4/255:alpha=1/255:iters=5")
    _settle(app, 30)
    save(r, "gui-train-robust.png")
    r.close()


if __name__ == "__main__":
    sys.exit(main())
