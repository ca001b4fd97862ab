"""Test-wide set-up: offline pyiqa weights, headless Qt, real photos from skimage."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Must happen before anything imports pyiqa (its cache dir is fixed at import).
os.environ.setdefault("TORCH_HOME", str((ROOT.parent / "shared" / "iqa-weights").resolve()))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")
# `list` keeps its catalogue in a cache folder: the tests' own, never the user's.
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

os.environ["IQA_LAB_CACHE"] = tempfile.mkdtemp(prefix="iqa-lab-test-cache-")
atexit.register(shutil.rmtree, os.environ["IQA_LAB_CACHE"], True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")


def photo(name: str, size: tuple[int, int] | None = (192, 192)) -> np.ndarray:
    """A real RGB photo from skimage.data as uint8 H×W×3, centre-cropped to ``size``."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if size is not None:
        h, w = img.shape[:2]
        th, tw = size
        top, left = max(0, (h - th) // 2), max(0, (w - tw) // 2)
        img = img[top:top + th, left:left + tw]
    return np.ascontiguousarray(img[..., :3])


def photo_tensor(name: str, size: tuple[int, int] | None = (192, 192)) -> torch.Tensor:
    """The same photo as a 1×3×H×W float tensor in [0, 1]."""
    arr = photo(name, size)
    return torch.from_numpy(arr).permute(2, 0, 1).float().div(255).unsqueeze(0)


@pytest.fixture(scope="session")
def photos() -> dict[str, torch.Tensor]:
    return {n: photo_tensor(n) for n in PHOTO_NAMES}


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """A folder of three real photos saved as PNG."""
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for n in ("astronaut", "coffee", "chelsea"):
        Image.fromarray(photo(n, (160, 160))).save(folder / f"{n}.png")
    return folder


@pytest.fixture(scope="session")
def niqe():
    from engine.metrics import create_metric

    return create_metric("niqe", device="cpu")


@pytest.fixture(scope="session")
def brisque():
    from engine.metrics import create_metric

    return create_metric("brisque", device="cpu")
