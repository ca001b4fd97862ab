"""MPRNet purifier (Zamir et al., CVPR 2021), the authors' denoising weights (SIDD).

spandrel itself does not implement MPRNet: its architecture lives in the companion
package ``spandrel-extra-arches`` (installed by this project's ``neural`` and ``dev``
extras). MPRNet's own code and weights are under the authors' Academic Public Licence
(non-commercial use only), which is why spandrel keeps it apart. When the package is
installed it is registered with spandrel and the authors' ``model_denoising.pth``
(``{"state_dict": ...}``, with or without DataParallel's ``module.`` prefix) loads as
is; otherwise the defence is listed as unavailable with that reason. The image is
reflect-padded to a multiple of 8 (MPRNet halves it twice into patches and encodes
each at three scales) and the first (finest-stage) output is kept, as the authors'
test script does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.defences._neural import (
    NeuralDefence,
    find_weights,
    load_spandrel,
    missing_message,
    pad_to_multiple,
)
from engine.defences.base import DEFENCES, DefenceError
from engine.spec.params import param

WEIGHTS = "model_denoising.pth"
URL = "https://drive.google.com/file/d/1LODPt9kYmxwU98g96UrRA0_Eh5HYcsRw/view"
EXTRA_PACKAGE = "spandrel-extra-arches"
_installed = False


def install_extra_arches() -> bool:
    """Register spandrel-extra-arches with spandrel (once); False when it is missing."""
    global _installed
    if _installed:
        return True
    try:
        import spandrel_extra_arches
    except ImportError:
        return False
    try:
        spandrel_extra_arches.install()
    except ValueError:  # already registered by someone else
        pass
    _installed = True
    return True


def _extra_arches_present() -> bool:
    import importlib.util

    return importlib.util.find_spec("spandrel_extra_arches") is not None


@dataclass
class MPRNetParams:
    weights: str = param(WEIGHTS, help="MPRNet weights file (name in the weights folder, or a path)")


@DEFENCES.register("mprnet")
class MPRNetDefence(NeuralDefence):
    """MPRNet denoiser as a purifier. Differentiable, deterministic."""

    Params = MPRNetParams
    differentiable = True
    random = False

    @classmethod
    def missing(cls, params: Any) -> list[str]:
        reasons = []
        if not _extra_arches_present():
            reasons.append(f"mprnet: spandrel does not implement MPRNet; its architecture is in the "
                           f"'{EXTRA_PACKAGE}' package (MPRNet itself is non-commercial), which is not installed "
                           f"(pip install {EXTRA_PACKAGE})")
        if find_weights(params.weights) is None:
            reasons.append(missing_message(params.weights, URL, "mprnet") + " (the SIDD denoising model)")
        return reasons

    def load(self) -> torch.nn.Module:
        if not install_extra_arches():
            raise DefenceError(f"mprnet needs the '{EXTRA_PACKAGE}' package")
        desc = load_spandrel(str(find_weights(self.params.weights)), ("MPRNet",), "mprnet")
        return desc.model.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        net = self.model
        padded, (h, w) = pad_to_multiple(x, 8)
        out = net(padded)
        if isinstance(out, (list, tuple)):
            out = out[0]
        return out[..., :h, :w]
