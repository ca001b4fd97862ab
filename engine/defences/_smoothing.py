"""Base of the certified (smoothing) defences: a smoothed metric with a certified interval.

A smoothing defence works on the metric, not only on the image: its
:meth:`SmoothingDefence.certify` scores n noisy copies ``x + ε_k``, ``ε_k ~ N(0, σ² I)``
(each clamped to [0, 1] and passed through the defence's denoiser, :meth:`purify`), and
returns the smoothed score with its certified interval at the L2 radius r
(``engine/evaluation/certified.py`` has the formulas). The runner calls ``certify`` on
the clean and the attacked image with the same seed, so both get the same draws.

Draws: ``ε_k`` is drawn in order k = 0, 1, … on a CPU generator seeded with the item's
seed, one (3, H, W) draw per k, and every image of a batch gets the same ``ε_k``; a
denoiser's own randomness for sample k comes from ``derive_seed(seed, "smoothing", k)``.
So for a given seed the result depends on neither the device, the batch nor the
``batch`` chunking. (In a run the item's defence seed is derived from the whole
defence spec, ``batch`` included, so a run with another ``batch`` draws other noise,
as after any parameter change.)

As an image defence (``d(x, seed)``: the inspector's images, pair measures, adaptive
attacks), it returns draw 0, ``D(clamp(x + ε_0))``: the first image the metric scores.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from engine.defences.base import Defence, sweep
from engine.evaluation.certified import BOUNDS, Certificate, mean_certificate, percentile_certificate
from engine.core.seeds import derive_seed
from engine.metrics.base import check_image_batch
from engine.spec.params import param


@dataclass
class SmoothingParams:
    sigma: float = param(0.25, min=1e-4, max=4.0, step=0.01, help="noise σ (image units, images in [0, 1])")
    n: int = param(100, min=1, max=1_000_000, help="noise samples per smoothed score")
    radius: float = param(0.25, min=0.0, max=1000.0, step=0.05, help="L2 radius r the interval is certified for")
    alpha: float = param(0.001, min=1e-12, max=0.5, help="1 − confidence of the certified interval")
    batch: int = param(16, min=1, max=4096, help="noisy samples per metric call (memory only; no effect on results)")


@dataclass
class MeanSmoothingParams(SmoothingParams):
    bound: str = param("hoeffding", choices=BOUNDS, help="confidence bound of the Monte-Carlo mean")


@dataclass
class MedianSmoothingParams(SmoothingParams):
    percentile: float = param(0.5, min=0.01, max=0.99, step=0.05, help="smoothed percentile p (0.5: median)")


@dataclass
class AggregateParams(SmoothingParams):
    aggregate: str = param("mean", choices=("mean", "median"), help="mean (randomized) or percentile smoothing")
    bound: str = param("hoeffding", choices=BOUNDS, help="confidence bound of the mean (aggregate=mean)")
    percentile: float = param(0.5, min=0.01, max=0.99, step=0.05, help="smoothed percentile (aggregate=median)")


#: the three σ of the smoothing literature (Cohen et al. 2019; Salman et al. 2020)
SIGMA_PRESETS = sweep("sigma", [0.12, 0.25, 0.5], fmt="{:g}")


class SmoothingDefence(Defence):
    """A metric-level defence: the smoothed metric and its certified interval.

    Subclasses set ``aggregate`` (``mean`` or ``median``, unless their parameters have
    one) and may override :meth:`purify` (the denoiser; default: none).

    Shape:
        - :meth:`certify` input: :math:`(B, 3, H, W)` in [0, 1]; output per image.
        - As a defence: :math:`(B, 3, H, W)` → the same (draw 0, denoised).
    """

    smooths_metric: ClassVar[bool] = True
    random = True
    differentiable = True
    aggregate: ClassVar[str] = "mean"
    presets = SIGMA_PRESETS

    def purify(self, z: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        """The denoiser applied to noisy images (not clamped; may leave [0, 1]).

        Args:
            z: :math:`(K, 3, H, W)` noisy images ``x + ε``.
            seeds: one seed per image of ``z`` for the denoiser's own randomness.

        Returns:
            :math:`(K, 3, H', W')`; the base class clamps it to [0, 1] for the metric.
        """
        return z

    def _noise(self, shape: torch.Size, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        return [torch.randn(shape, generator=generator) for _ in range(n)]

    def _samples(self, x: torch.Tensor, eps: list[torch.Tensor], first: int, seed: int) -> torch.Tensor:
        """``D(clamp(x + σ ε_k))`` for the given draws, every image × every draw, draw-major."""
        sigma = self.params.sigma
        noise = torch.stack(eps).to(device=x.device, dtype=x.dtype)  # K,3,H,W
        z = (x.unsqueeze(0) + sigma * noise.unsqueeze(1)).flatten(0, 1)  # K·B,3,H,W
        seeds = [derive_seed(seed, "smoothing", first + k) for k in range(len(eps)) for _ in range(x.shape[0])]
        return self.purify(self.clamp_input(z), seeds).clamp(0.0, 1.0)

    def clamp_input(self, z: torch.Tensor) -> torch.Tensor:
        """What the denoiser receives: the noisy image clamped to [0, 1] (diffusion
        denoisers override this and take the unclamped Gaussian-noised image)."""
        return z.clamp(0.0, 1.0)

    def __call__(self, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        check_image_batch(x)
        seed = int(seed if seed is not None else 0)
        eps = self._noise(x.shape[1:], 1, torch.Generator().manual_seed(seed))
        return self._samples(x, eps, 0, seed)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError("call the defence with a seed: d(x, seed=s)")

    def score_samples(self, metric: Any, x: torch.Tensor, eps: list[torch.Tensor], first: int,
                      seed: int) -> torch.Tensor:
        """The base scores of draws ``first, first + 1, …`` (``eps``), draw-major :math:`(K·B,)`."""
        return metric.score(self._samples(x, eps, first, seed))

    @torch.no_grad()
    def sample_scores(self, metric: Any, x: torch.Tensor, seed: int) -> torch.Tensor:
        """The n base scores ``M(D(clamp(x + σ ε_k)))``.

        Returns:
            :math:`(n, B)`, metric units, on the CPU.
        """
        check_image_batch(x)
        gen = torch.Generator().manual_seed(int(seed))
        n, chunk = self.params.n, max(1, self.params.batch // x.shape[0])
        out = []
        for first in range(0, n, chunk):
            eps = self._noise(x.shape[1:], min(chunk, n - first), gen)
            scores = self.score_samples(metric, x, eps, first, int(seed))
            out.append(scores.detach().float().cpu().reshape(len(eps), x.shape[0]))
        return torch.cat(out)

    def certify(self, metric: Any, x: torch.Tensor, seed: int) -> Certificate:
        """The smoothed score of ``x`` and its certified interval at ``radius``.

        Args:
            metric: an ``engine.metrics.base.Metric`` (its ``bounds`` normalise the score).
            x: :math:`(B, 3, H, W)` in [0, 1].
            seed: the item's defence seed; use the same for the clean and the attacked image.
        """
        p = self.params
        scores = self.sample_scores(metric, x, seed)
        how = getattr(p, "aggregate", self.aggregate)
        if how == "median":
            return percentile_certificate(scores, metric.bounds, p.sigma, p.radius, p.alpha,
                                          getattr(p, "percentile", 0.5))
        return mean_certificate(scores, metric.bounds, p.sigma, p.radius, p.alpha, getattr(p, "bound", "hoeffding"))
