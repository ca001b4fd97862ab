"""Diffusion denoised smoothing: one reverse step of the DiffPure model as the denoiser.

Reference: Carlini, Tramèr, Dvijotham, Rice, Sun, Kolter, "(Certified!!) Adversarial
Robustness for Free!", ICLR 2023; MSU's defence benchmark (DDRS).

Noise matching: the model works in [−1, 1], where the noise of ``x + ε``, ε ~ N(0, σ²),
has standard deviation 2σ. A DDPM's ``x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε``, so
``√ᾱ_t·(2(x + ε) − 1)`` is exactly ``x_t`` for ``x₀ = 2x − 1`` when
``(1 − ᾱ_t)/ᾱ_t = (2σ)²``; t is the timestep whose ᾱ_t is closest to that (Carlini et al.
choose it the same way). One step then estimates
``x̂₀ = (x_t − √(1 − ᾱ_t)·ε_θ(x_t, t)) / √ᾱ_t``, clipped to [−1, 1] and mapped back to
[0, 1]. The denoiser takes the noisy image unclamped (the Gaussian model needs it).

Limit: the image is resized (bicubic, unclamped) to the model's ``sample_size`` and back;
shrinking averages the noise, so the matched t assumes images at the model's size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from engine.defences._smoothing import AggregateParams, SmoothingDefence
from engine.defences.base import DEFENCES, DefenceError
from engine.defences.diffpure import DEFAULT_MODEL, DiffPureDefence
from engine.metrics.base import Availability
from engine.spec.params import param


@dataclass
class DiffusionSmoothingParams(AggregateParams):
    model: str = param(DEFAULT_MODEL, help="the DiffPure DDPM: a guided-diffusion .pt, a diffusers folder or a hub id")
    allow_download: bool = param(False, help="fetch a missing model (needs network)")


def matched_timestep(alphas_cumprod: torch.Tensor, sigma: float) -> int:
    """The 0-based timestep t whose ``(1 − ᾱ_t)/ᾱ_t`` is closest to ``(2σ)²``.

    Raises:
        DefenceError: σ is beyond the model's noisiest step.
    """
    a = alphas_cumprod.double()
    level = (1 - a) / a
    target = (2 * sigma) ** 2
    if target > float(level[-1]) * 1.05:
        raise DefenceError(f"σ = {sigma:g} is noisier than the diffusion model's last step "
                           f"(σ up to {0.5 * float(level[-1]) ** 0.5:.3g}); choose a smaller sigma")
    return int((level - target).abs().argmin())


def _resize(z: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(z.shape[-2:]) == tuple(size):
        return z
    return F.interpolate(z, size=size, mode="bicubic", align_corners=False, antialias=True)


@DEFENCES.register("diffusion-smoothing")
class DiffusionSmoothing(SmoothingDefence):
    """Smoothing of ``M(denoise(x + ε))`` with the one-step diffusion denoiser above.

    Args:
        model, allow_download: the DiffPure model (as for ``diffpure``).
        aggregate: ``mean`` | ``median``; plus σ (presets 0.12, 0.25, 0.5), n, radius,
            alpha, bound, percentile, batch.
    """

    Params = DiffusionSmoothingParams
    differentiable = False

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.diffusion = DiffPureDefence(t=1, model=self.params.model, allow_download=self.params.allow_download)

    @classmethod
    def availability(cls, params: dict[str, Any] | None = None) -> Availability:
        p = params or {}
        return DiffPureDefence.availability({k: p[k] for k in ("model", "allow_download") if k in p})

    def to(self, device: torch.device | str) -> DiffusionSmoothing:
        super().to(device)
        self.diffusion.to(device)
        return self

    @property
    def timestep(self) -> int:
        """The matched 0-based timestep for this σ."""
        return matched_timestep(self.diffusion.model[1].alphas_cumprod, self.params.sigma)

    def clamp_input(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def to_model(self, z: torch.Tensor) -> tuple[torch.Tensor, int]:
        """``(x_t, t)``: the noisy images scaled into the model's space at the matched step."""
        unet = self.diffusion.model[0]
        t = self.timestep
        a = float(self.diffusion.model[1].alphas_cumprod[t])
        dev = next(unet.parameters()).device
        return a ** 0.5 * (_resize(z.to(dev), self.diffusion.sample_size) * 2 - 1), t

    def from_model(self, z0: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """[−1, 1] model output back to an image of ``like``'s size and device."""
        return _resize((z0.clamp(-1, 1) + 1) / 2, tuple(like.shape[-2:])).to(like.device)

    @torch.no_grad()
    def purify(self, z: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        unet, scheduler = self.diffusion.model
        xt, t = self.to_model(z)
        a = scheduler.alphas_cumprod[t].to(xt.device, xt.dtype)
        eps = unet(xt, t).sample[:, : xt.shape[1]]
        return self.from_model((xt - (1 - a).sqrt() * eps) / a.sqrt(), z)
