"""A small full-able disk for tests: a real tmpfs when it can be mounted (root), else a
simulation that makes image writes fail with ENOSPC once a byte budget is spent."""
from __future__ import annotations

import errno
import shutil
import subprocess
from pathlib import Path


class SmallDisk:
    """``root``: a folder on the disk; ``fill(leave)`` leaves ``leave`` bytes free;
    ``free_up()`` undoes it."""

    def __init__(self, root: Path, real: bool, monkeypatch) -> None:
        self.root, self.real, self._mp = root, real, monkeypatch
        self._budget: list[int] | None = None

    def fill(self, leave: int) -> None:
        if self.real:
            free = shutil.disk_usage(self.root).free
            with open(self.root / "filler", "wb") as f:
                f.write(b"\0" * max(0, free - leave))
            return
        import engine.run.driver
        from engine.io.images import save_png

        budget = [leave]

        def limited_save(arr, path):
            p = save_png(arr, path)
            budget[0] -= p.stat().st_size
            if budget[0] < 0:
                p.unlink()
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return p

        self._budget = budget
        self._mp.setattr(engine.run.driver, "save_png", limited_save)

    def free_up(self) -> None:
        if self.real:
            (self.root / "filler").unlink(missing_ok=True)
        else:
            import engine.run.driver
            from engine.io.images import save_png

            self._mp.setattr(engine.run.driver, "save_png", save_png)


def try_mount(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                       capture_output=True, text=True)
    return r.returncode == 0


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)
