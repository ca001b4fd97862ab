"""The identity defence ``none``: the undefended baseline row of every item."""
from __future__ import annotations

import torch

from engine.defences.base import DEFENCES, Defence


@DEFENCES.register("none")
class NoDefence(Defence):
    """Returns the input unchanged (differentiable, deterministic)."""

    identity = True

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return x
