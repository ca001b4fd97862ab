"""Unreadable files are marked when their folder opens, with the run's message (issue 22, item 5)."""
from __future__ import annotations

import pytest

from engine.io.images import ImageLoadError, load_image


def test_broken_files_are_marked_when_the_folder_opens(qtbot, make_window, settings, photo_folder, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "coffee.png").write_bytes((photo_folder / "coffee.png").read_bytes())
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("not an image at all\n")
    w = make_window(settings)
    w.images.set_folder(str(folder))
    qtbot.waitUntil(lambda: len(w.session.unreadable) == 2, timeout=10_000)
    for name in ("empty.jpg", "notes.png"):
        path = str((folder / name).resolve())
        with pytest.raises(ImageLoadError) as run_error:   # what a run's load gives
            load_image(path)
        assert w.images.status(path) == "unreadable"
        assert w.session.image_status(path).message == f"[load] {run_error.value}"
        reason = str(run_error.value).split(": ", 1)[1]
        assert reason in w.images._item(path).text() and name in w.images._item(path).text()
    good = str((folder / "coffee.png").resolve())
    assert w.images.status(good) == "pending" and good not in w.session.unreadable
    assert w.log.contains("2 image(s) cannot be read")
