"""Plug-in fixtures: every test runs inside :func:`engine.plugins.isolated` (the registries
are process-global: what a test loads is gone after it), plug-in files made from the
``new-plugin`` templates (real components), a small installed distribution with entry
points in the test's temporary folder, and a TorchScript metric file."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.plugins import isolated
from engine.plugins.template import render
from tests.conftest import photo

EP_PACKAGE = "iqa_lab_test_pkg"


@pytest.fixture(autouse=True)
def plugin_isolation(monkeypatch):
    """Registries and the loader's records restored after each test; no stray environment."""
    monkeypatch.delenv("IQA_LAB_PLUGINS", raising=False)
    with isolated():
        yield
    for mod in [m for m in sys.modules if m == EP_PACKAGE or m.startswith(EP_PACKAGE + ".")]:
        del sys.modules[mod]


def write_plugin(folder: Path, kind: str, name: str) -> Path:
    """The ``new-plugin`` template of ``kind`` registered as ``name``, written to ``folder``."""
    path = folder / f"{name.replace('-', '_')}.py"
    path.write_text(render(kind, name, path.name), encoding="utf-8")
    return path


@pytest.fixture
def plugin_files(tmp_path) -> dict[str, Path]:
    """A metric ``p-sharp``, an attack ``p-ifgsm`` and a defence ``p-tv`` as plug-in files."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    return {"metric": write_plugin(folder, "metric", "p-sharp"), "attack": write_plugin(folder, "attack", "p-ifgsm"),
            "defence": write_plugin(folder, "defence", "p-tv")}


def _undecorated(kind: str, name: str) -> str:
    """A template without its register decorator: the entry point names the class."""
    text = render(kind, name, "x.py")
    return "\n".join(line for line in text.splitlines() if ".register(" not in line) + "\n"


@pytest.fixture
def entry_point_dist(tmp_path, monkeypatch) -> Path:
    """An installed distribution ``iqa-lab-test-pkg`` 1.2 on sys.path: entry points naming a
    metric class (``ep-sharp``), an attack module whose decorator registers ``ep-ifgsm``,
    and a defence class (``ep-tv``)."""
    site = tmp_path / "site"
    pkg = site / EP_PACKAGE
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "metric.py").write_text(_undecorated("metric", "ep-sharp"), encoding="utf-8")
    (pkg / "attack.py").write_text(render("attack", "ep-ifgsm", "attack.py"), encoding="utf-8")
    (pkg / "defence.py").write_text(_undecorated("defence", "ep-tv"), encoding="utf-8")
    info = site / "iqa_lab_test_pkg-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: iqa-lab-test-pkg\nVersion: 1.2\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(textwrap.dedent(f"""\
        [iqa_lab.metrics]
        ep-sharp = {EP_PACKAGE}.metric:EpSharp

        [iqa_lab.attacks]
        ep-ifgsm = {EP_PACKAGE}.attack

        [iqa_lab.defences]
        ep-tv = {EP_PACKAGE}.defence:EpTv
        """), encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    return site


class TinyIqa(torch.nn.Module):
    """A small network scoring (B, 3, H, W) → (B,) in (0, 1): what a user would script."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.head = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return torch.sigmoid(self.head(f)).reshape(-1)


@pytest.fixture
def torchscript_file(tmp_path) -> Path:
    """A scripted :class:`TinyIqa` with seeded weights."""
    torch.manual_seed(3)
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(TinyIqa()), str(path))
    return path


@pytest.fixture
def small_photos(tmp_path) -> Path:
    """Two real photos, small (the runs stay quick on 2 shared CPUs)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in ("astronaut", "coffee"):
        Image.fromarray(photo(n, (48, 48))).save(folder / f"{n}.png")
    return folder
