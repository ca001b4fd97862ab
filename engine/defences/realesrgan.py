"""Real-ESRGAN purifier: realesr-general-x4v3 (SRVGGNetCompact) with a denoise strength.

How a ×4 super-resolution model purifies (``mode``):

- ``down-up`` (default): shrink the image by the model's scale (bicubic, antialiased),
  then super-resolve it back to the original size. The down-sampling averages the
  adversarial pattern away and the model restores plausible detail; this is the usual
  way an SR model is used as a purifier, and it runs the network on 1/16 of the pixels.
- ``up-down``: super-resolve at full size, then shrink back (antialiased): the network
  then acts as a denoiser only; keeps more detail, removes less, 16× the work.
- ``up``: the network's ×4 output itself (4H×4W), which the metric then scores: MSU's
  code (``metrics/defences/realesrgan/run.py``: ``RealESRGANer`` with ``outscale`` unused,
  no pre-pad, fp32) returns exactly that, and does not clamp it to [0, 1]. The preset
  ``msu-literal`` (``mode="up"``, ``clamp=False``, strength 0.2) reproduces it.

Denoise strength is the authors' trick (their ``--denoise_strength``): the weights of
realesr-general-x4v3 (strong denoising) and realesr-general-wdn-x4v3 (weak denoising)
are interpolated, ``s·x4v3 + (1 − s)·wdn``; s = 1 needs only the x4v3 file, s = 0 only
the wdn one. The .pth files are the authors' release files, loaded with spandrel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.defences._neural import (
    NeuralDefence,
    fetch_weights,
    find_weights,
    load_spandrel,
    missing_message,
    resize,
)
from engine.defences.base import DEFENCES, MSU_LITERAL, DefenceError, msu_reference, sweep
from engine.spec.params import param

_RELEASE = "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/"
STRONG = "realesr-general-x4v3.pth"
WEAK = "realesr-general-wdn-x4v3.pth"
URLS = {STRONG: _RELEASE + STRONG, WEAK: _RELEASE + WEAK}


@dataclass
class RealESRGANParams:
    denoise_strength: float = param(0.2, min=0.0, max=1.0, step=0.1,
                                    help="0 = weak denoising (wdn model), 1 = strong (x4v3 model)")
    mode: str = param("down-up", choices=("down-up", "up-down", "up"),
                      help="down-up: shrink ×1/scale then super-resolve back; up-down: super-resolve then shrink; "
                           "up: the network's ×scale output (MSU)")
    clamp: bool = param(True, help="clamp the output to [0, 1] (MSU returns the network's raw output)")
    allow_download: bool = param(False, help="fetch missing weights from the authors' release (needs network)")


def needed_files(strength: float) -> list[str]:
    """The weight files a denoise strength needs."""
    return ([STRONG] if strength > 0 else []) + ([WEAK] if strength < 1 else [])


def interpolate_state(strong: dict[str, torch.Tensor], weak: dict[str, torch.Tensor],
                      strength: float) -> dict[str, torch.Tensor]:
    """``strength·strong + (1 − strength)·weak``, key by key (the authors' DNI)."""
    if strong.keys() != weak.keys() or any(strong[k].shape != weak[k].shape for k in strong):
        raise DefenceError(f"realesrgan: {STRONG} and {WEAK} have different architectures")
    return {k: strength * strong[k].float() + (1.0 - strength) * weak[k].float() for k in strong}


@DEFENCES.register("realesrgan")
class RealESRGANDefence(NeuralDefence):
    """Real-ESRGAN (general x4v3) as a purifier. Differentiable, deterministic.

    Example:
        >>> d = RealESRGANDefence(denoise_strength=0.5)
        >>> y = d(x)          # same size as x
    """

    Params = RealESRGANParams
    presets = {**sweep("denoise_strength", [0.0, 0.2, 0.5, 0.8, 1.0]),
               MSU_LITERAL: {"denoise_strength": 0.2, "mode": "up", "clamp": False}}
    literal_presets = msu_reference("realesrgan", presets)
    differentiable = True
    random = False

    @classmethod
    def missing(cls, params: Any) -> list[str]:
        return [missing_message(f, URLS[f], "realesrgan") for f in needed_files(params.denoise_strength)
                if find_weights(f) is None]

    @classmethod
    def can_download(cls, params: Any) -> bool:
        return bool(params.allow_download)

    def load(self) -> torch.nn.Module:
        from spandrel import ModelLoader

        s = self.params.denoise_strength
        paths = {f: fetch_weights(f, URLS[f], allow_download=self.params.allow_download, what="realesrgan")
                 for f in needed_files(s)}
        if len(paths) == 1:
            desc = load_spandrel(str(next(iter(paths.values()))), ("Compact",), "realesrgan")
        else:
            loader = ModelLoader()
            try:
                strong = loader.load_state_dict_from_file(str(paths[STRONG]))
                weak = loader.load_state_dict_from_file(str(paths[WEAK]))
                desc = loader.load_from_state_dict(interpolate_state(strong, weak, s))
            except DefenceError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise DefenceError(f"realesrgan: cannot load {STRONG}/{WEAK}: {type(exc).__name__}: {exc}") from None
            if desc.architecture.id != "Compact":
                raise DefenceError(f"realesrgan: the files hold a {desc.architecture.name} model, "
                                   "expected SRVGGNetCompact (realesr-general-x4v3)")
        self.scale = int(desc.scale)
        return desc.model.eval().requires_grad_(False)

    @property
    def clamps_output(self) -> bool:
        return bool(self.params.clamp)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        net = self.model
        h, w = x.shape[-2:]
        s = self.scale
        if self.params.mode == "up":
            out = net(x.float())
            return out.clamp(0.0, 1.0) if self.params.clamp else out
        if self.params.mode == "down-up":
            small = resize(x, (max(1, round(h / s)), max(1, round(w / s))))
            return resize(net(small).clamp(0.0, 1.0), (h, w))
        return resize(net(x).clamp(0.0, 1.0), (h, w))
