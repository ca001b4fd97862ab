"""DensePure: several full reverse-diffusion purifications of the noised input, the
median of their scores as the base score, then smoothing.

Reference: Xiao, Chen, Liu, Wang, Mao, Xie, Song, Xu, "DensePure: Understanding Diffusion
Models towards Adversarial Robustness", ICLR 2023 (majority vote over reverse passes;
for a score, the median); MSU's defence benchmark.

The noisy image enters the DiffPure model at the timestep matched to σ, exactly as in
``diffusion-smoothing`` (``engine/defences/diffusion_smoothing.py``), and is then denoised
with the model's ancestral DDPM steps t, …, 0 (DiffPure's sampler). Each of the ``votes``
passes of noise sample k draws its reverse-process noise from its own seed
``derive_seed(seed, "smoothing", k, v)``, the same for the clean and the attacked image.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.defences.base import DEFENCES
from engine.defences.diffusion_smoothing import DiffusionSmoothing, DiffusionSmoothingParams
from engine.core.seeds import derive_seed
from engine.spec.params import param


@dataclass
class DensePureParams(DiffusionSmoothingParams):
    votes: int = param(5, min=1, max=1000, help="reverse-diffusion purifications per noise sample (median of their scores)")


@DEFENCES.register("densepure")
class DensePure(DiffusionSmoothing):
    """Base score: the median over ``votes`` full purifications of ``x + ε``; then mean
    or median smoothing over n noise samples with its certificate (the reverse process's
    randomness is part of the base function, so the certificate still holds).

    Args:
        votes: purifications per noise sample; plus everything of ``diffusion-smoothing``.
    """

    Params = DensePureParams

    @torch.no_grad()
    def purify(self, z: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        unet, scheduler = self.diffusion.model
        xt, t_start = self.to_model(z)
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        learned = scheduler.config.variance_type in ("learned", "learned_range")
        for t in range(t_start, -1, -1):
            out = unet(xt, t).sample
            if out.shape[1] != xt.shape[1] and not learned:
                out = out[:, : xt.shape[1]]
            xt = scheduler.step(out, t, xt, generator=gens).prev_sample
        return self.from_model(xt, z)

    def score_samples(self, metric: Any, x: torch.Tensor, eps: list[torch.Tensor], first: int,
                      seed: int) -> torch.Tensor:
        votes = [metric.score(self._samples(x, eps, first, derive_seed(seed, "vote", v) if v else seed))
                 for v in range(self.params.votes)]
        return torch.stack(votes).median(0).values
