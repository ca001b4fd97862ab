"""Denoised smoothing: a restorer of this project before the metric, then mean or median
smoothing with its certificate.

Reference: Salman, Sun, Yang, Kapoor, Kolter, "Denoised Smoothing: A Provable Defense for
Pretrained Classifiers", NeurIPS 2020; MSU's defence benchmark (DRS, DMS).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.defences._smoothing import AggregateParams, SmoothingDefence
from engine.defences.base import DEFENCES, DefenceError
from engine.defences.chain import build_step
from engine.metrics.base import Availability
from engine.spec.params import ParamError, param


@dataclass
class DenoisedSmoothingParams(AggregateParams):
    denoiser: str = param("median-blur", help="the restorer before the metric: a defence spec (name, "
                                              "name[preset] or name:k=v; on the command line name;k=v), "
                                              "e.g. fcn, realesrgan, mprnet")


@DEFENCES.register("denoised-smoothing")
class DenoisedSmoothing(SmoothingDefence):
    """Smoothing of ``M(D(clamp(x + ε)))`` with D any (non-smoothing) defence of the registry.

    The certificate is that of the chosen aggregate (mean: randomized smoothing; median:
    percentile smoothing): D is part of the base function, so any D keeps it valid; a
    good denoiser only makes the base scores of noisy images closer to the clean score.
    A random denoiser gets its own seed per noise sample (the same for clean and attacked).

    Args:
        denoiser: the restorer's spec (default ``median-blur``); ``fcn;checkpoint=f.pt``
            is read as ``fcn:checkpoint=f.pt``, so it fits into a ``--defence name:k=v`` list.
        aggregate: ``mean`` | ``median``; plus σ, n, radius, alpha, bound, percentile, batch.

    Example:
        >>> d = DenoisedSmoothing(denoiser="fcn:checkpoint=fcn.pt", aggregate="median", sigma=0.12)
    """

    Params = DenoisedSmoothingParams

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        # ';' separates the denoiser's own parameters where ':' would end this spec's (the CLI)
        self.denoiser = build_step(self.params.denoiser.replace(";", ":"), "denoiser")
        if getattr(self.denoiser, "smooths_metric", False):
            raise ParamError(f"denoiser {self.params.denoiser!r} is itself a smoothing defence; "
                             "give a restorer (e.g. fcn, realesrgan, mprnet, median-blur)")
        self.differentiable = self.denoiser.differentiable

    @classmethod
    def availability(cls, params: dict[str, Any] | None = None) -> Availability:
        """Unavailable when the denoiser is (e.g. a neural restorer without its weights)."""
        try:
            cls(params or {})
        except (DefenceError, ParamError) as exc:
            return Availability("unavailable", str(exc))
        return Availability("ready")

    def to(self, device: torch.device | str) -> DenoisedSmoothing:
        super().to(device)
        self.denoiser.to(device)
        return self

    def purify(self, z: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        if not self.denoiser.random:
            return self.denoiser(z)
        return torch.cat([self.denoiser(z[i:i + 1], seed=s) for i, s in enumerate(seeds)])
