"""Fixtures shared by the defence tests."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty weights folder, made the one the defences look in (``IQA_LAB_WEIGHTS``)."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("IQA_LAB_WEIGHTS", str(folder))
    return folder
