"""Opening images: dropped folders and files, recent folders, thumbnails."""
from __future__ import annotations

from gui.images_panel import ImagesPanel


def test_drop_folder_or_files_and_recent(qtbot, photo_folder, tmp_path):
    panel = ImagesPanel()
    qtbot.addWidget(panel)
    panel.open_dropped([str(photo_folder)])
    assert sorted(p.rsplit("/", 1)[-1] for p in panel.paths()) == ["astronaut.png", "chelsea.png", "coffee.png"]
    assert all(panel.status(p) == "pending" for p in panel.paths())

    (tmp_path / "notes.txt").write_text("not an image")
    panel.open_dropped([str(photo_folder / "coffee.png"), str(photo_folder / "chelsea.png"), str(tmp_path / "notes.txt")])
    assert [p.rsplit("/", 1)[-1] for p in panel.paths()] == ["chelsea.png", "coffee.png"]

    other = tmp_path / "other"
    other.mkdir()
    panel.set_folder(str(other))
    assert panel.paths() == [] and panel.recent[:2] == [str(other.resolve()), str(photo_folder.resolve())]
    assert [a.data() for a in panel.recent_menu.actions()][:2] == panel.recent[:2]

    panel.set_folder(str(photo_folder))
    panel.wait_thumbnails()
    item = panel._item(panel.paths()[0])
    assert not item.icon().isNull()
    panel.set_status(panel.paths()[0], "error", "ImageLoadError: broken")
    assert "broken" in item.toolTip() and item.text().endswith("error: ImageLoadError: broken")
