"""Desktop app entry point: ``python main.py`` (``main.py`` calls :func:`main`).

Options:
    --store PATH     open a result store at start (shows its results, computes nothing)
    --folder PATH    open a folder of images at start
    --smoke          start, show the window, report the Qt platform plugin and quit
                     (proves PySide6 and OpenCV share the process)
    --demo           load the sample photos and run the default experiment
    --screenshot PNG with --smoke, or --demo (after the run): save a 1280×800 grab and quit
"""
from __future__ import annotations

import argparse
import os
import sys


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="main.py", description="IQA Purification Lab (desktop app)")
    p.add_argument("--store", help="open a result store (.sqlite) at start")
    p.add_argument("--folder", help="open a folder of images at start")
    p.add_argument("--smoke", action="store_true", help="start, print the Qt set-up, quit after a moment")
    p.add_argument("--demo", action="store_true", help="load the sample photos and run the default experiment")
    p.add_argument("--screenshot", help="with --smoke or --demo: save a 1280×800 grab of the window and quit")
    args, _qt_args = p.parse_known_args(argv)
    return args


GIL_SWITCH_INTERVAL_S = 0.001


def create_application(argv: list[str] | None = None):
    """The QApplication, created after OpenCV's Qt variables are removed from the environment."""
    from gui.qt_env import prepare_qt_environment

    removed = prepare_qt_environment()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "iqa-lab", *(argv or [])])
    app.setApplicationName("IQA Purification Lab")
    app.setOrganizationName("iqa-lab")
    app.setStyle("Fusion")
    from gui.style import apply_style

    apply_style(app)
    from gui.gc_guard import install

    install(app)  # garbage (closed windows' widgets) is collected on the GUI thread only
    # The worker thread runs Python between torch calls; the GUI thread waits for the GIL up
    # to one switch interval (5 ms by default) each time it wants it back, and an event-loop
    # turn needs it several times. 1 ms keeps the GUI's turns short during a run.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    app.setProperty("removed_env", removed)
    return app


def main(argv: list[str] | None = None) -> int:
    args = _parse(list(sys.argv[1:] if argv is None else argv))
    app = create_application([])
    removed = app.property("removed_env") or []

    from PySide6.QtCore import QTimer

    from gui.main_window import MainWindow

    settings = None
    if args.smoke or (args.demo and args.screenshot):  # a throwaway settings file: a smoke test must not change the user's
        import tempfile

        from PySide6.QtCore import QSettings

        tmp = tempfile.mkdtemp(prefix="iqa-lab-smoke-")
        settings = QSettings(os.path.join(tmp, "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    if args.folder:
        window.images.set_folder(args.folder)
    if args.store:
        window.open_store(args.store)
    window.show()
    app.aboutToQuit.connect(window.shutdown)

    if args.smoke:
        import cv2

        print(f"platform plugin: {app.platformName()}")
        print(f"cv2 {cv2.__version__} imported; removed from the environment: {', '.join(removed) or 'nothing'}")
        print(f"QT_QPA_PLATFORM_PLUGIN_PATH={os.environ.get('QT_QPA_PLATFORM_PLUGIN_PATH', '')}")

        def finish() -> None:
            if args.screenshot:
                window.resize(1280, 800)
                window.grab().save(args.screenshot)
                print(f"screenshot: {args.screenshot}")
            print("smoke: ok")
            window.close()
            app.quit()

        QTimer.singleShot(1500, finish)
    elif args.demo:
        window.load_samples()
        QTimer.singleShot(300, window.start_run)
        if args.screenshot:
            def shoot() -> None:
                if window.controller.running or window.panel.running or not window.run_count:
                    QTimer.singleShot(200, shoot)
                    return
                _screenshot(window, args.screenshot)
                window.close()
                app.quit()

            QTimer.singleShot(1000, shoot)
    return int(app.exec())


def _screenshot(window, path: str) -> None:
    """Grab the window at 1280×800 with a finished item in the inspector."""
    from PySide6.QtWidgets import QApplication

    window.resize(1280, 800)
    rows = window.model.rows
    pick = next((i for i, r in enumerate(rows) if r.get("defence") == "jpeg" and "astronaut" in r.get("image_name", "")),
                0)
    if rows:
        src = window.model.index(pick, 0)
        window.table.selectRow(window.proxy.mapFromSource(src).row())
    window.inspector.follow.setChecked(False)
    for _ in range(30):
        QApplication.processEvents()
    window.grab().save(path)
    _shrink_png(path)
    print(f"screenshot: {path}")


def _shrink_png(path: str) -> None:
    """Re-save as a 256-colour PNG (about a third of the size; the UI has few colours)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                           dither=Image.Dither.FLOYDSTEINBERG)
    small.save(path, optimize=True)


if __name__ == "__main__":
    sys.exit(main())
