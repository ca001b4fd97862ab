"""PySide6 and OpenCV in one process: cv2's Qt plugin variables are dropped before Qt starts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gui.qt_env import prepare_qt_environment

ROOT = Path(__file__).resolve().parents[2]


def test_cv2_plugin_path_is_removed_but_user_paths_kept(monkeypatch):
    import cv2

    cv2_dir = os.path.dirname(cv2.__file__)
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", os.path.join(cv2_dir, "qt", "plugins"))
    monkeypatch.setenv("QT_QPA_FONTDIR", "/usr/share/fonts/mine")
    removed = prepare_qt_environment()
    assert removed == ["QT_QPA_PLATFORM_PLUGIN_PATH"]
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ
    assert os.environ["QT_QPA_FONTDIR"] == "/usr/share/fonts/mine"


@pytest.mark.slow
def test_main_py_starts_the_gui_with_cv2_imported(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    code = ("import cv2, os, sys; assert 'cv2' in os.environ.get('QT_QPA_PLATFORM_PLUGIN_PATH', '');"
            "import main; sys.exit(main.main(['--smoke']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "platform plugin: offscreen" in out
    assert "removed from the environment: QT_QPA_PLATFORM_PLUGIN_PATH" in out
    assert "smoke: ok" in out
    assert "Could not load the Qt platform plugin" not in out
