"""A tiny plug-in learned metric (registered for the duration of a test module).

Log energies of learned 3×3 filters and a small MLP: enough to
learn blur/JPEG/noise levels in a few epochs on the CPU. Loads ``weights=`` files in the
``{"state_dict": …}`` layout, as a plug-in author would write it.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.metrics.base import METRICS, Metric, MetricError

NAME = "tiny-iqa"


class TinyNet(nn.Module):
    """Log energies of eight learned 3×3 filters of the image's high-pass (image minus its
    3×3 local mean), then a small tanh MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(3, 8, 3, bias=False)
        self.head = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        high = x - nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        energy = self.features(high).pow(2).mean(dim=(2, 3))
        return self.head(torch.log(energy + 1e-6))[:, 0]


class TinyIQA(Metric):
    """Tiny learned NR metric for tests (higher = better, bounds 0..1)."""

    name = NAME
    bounds = (0.0, 1.0)
    lower_better = False
    differentiable = True

    def __init__(self, pretrained: bool = True, weights: str | None = None) -> None:
        super().__init__()
        self.net = TinyNet()
        if weights is not None:
            ckpt = torch.load(weights, map_location="cpu", weights_only=True)
            state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
            if not isinstance(state, dict):
                raise MetricError(f"{NAME}: {weights!r} is not a {{'state_dict': …}} checkpoint")
            self.net.load_state_dict(state, strict=True)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(self.device))


def register() -> None:
    if NAME not in METRICS:
        METRICS.register(NAME)(TinyIQA)


def unregister() -> None:
    if NAME in METRICS:
        METRICS.unregister(NAME)
