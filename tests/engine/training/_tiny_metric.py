"""A tiny plug-in learned metric (registered for the duration of a test module).

Two 3×3 convolutions, per-channel mean and standard deviation, a small MLP: enough to
learn blur/JPEG/noise levels in a few epochs on the CPU. Loads ``weights=`` files in the
``{"state_dict": …}`` layout, as a plug-in author would write it.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.metrics.base import METRICS, Metric, MetricError

NAME = "tiny-iqa"


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).flatten(2)
        return self.head(torch.cat([f.mean(-1), f.std(-1)], dim=1))[:, 0]


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
