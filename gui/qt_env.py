"""Make PySide6 and OpenCV share one process.

``opencv-python`` (the non-headless wheel) ships its own Qt 5 platform plugins and, on
``import cv2``, points ``QT_QPA_PLATFORM_PLUGIN_PATH`` and ``QT_QPA_FONTDIR`` at them.
PySide6's Qt 6 then tries cv2's ``libqxcb.so`` first and fails to start ("Could not load
the Qt platform plugin "xcb" in ".../cv2/qt/plugins""). The engine imports cv2 (defences),
so before the QApplication exists we import it ourselves and drop what it set.
"""
from __future__ import annotations

import os

CV2_QT_VARS = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")


def _cv2_dir() -> str | None:
    try:
        import cv2
    except Exception:  # noqa: BLE001 - cv2 is optional for the GUI itself
        return None
    return os.path.dirname(os.path.abspath(cv2.__file__))


def prepare_qt_environment() -> list[str]:
    """Import cv2 (if installed) and remove the Qt variables that point into it.

    Must run before ``QApplication`` is created. Variables the user set to somewhere else
    are kept.

    Returns:
        the names of the variables removed.
    """
    cv2_dir = _cv2_dir()
    removed = []
    for var in CV2_QT_VARS:
        value = os.environ.get(var)
        if value is not None and cv2_dir is not None and os.path.abspath(value).startswith(cv2_dir):
            os.environ.pop(var)
            removed.append(var)
    return removed
