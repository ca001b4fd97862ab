"""Where a result store lives: ``results.sqlite`` in an output folder."""
from __future__ import annotations

from pathlib import Path

STORE_NAME = "results.sqlite"


def store_file(path: str | Path) -> Path:
    """The store a command is given: ``results.sqlite`` inside a folder, or the file itself."""
    p = Path(path)
    return p / STORE_NAME if p.is_dir() else p
