"""MI-FGSM (Dong et al., 2018): I-FGSM with momentum on the L1-normalised gradient.

g ← ν·g + ∇/mean|∇|; δ ← clip_ε(δ − α·sign(g)). Constrains: L∞ ≤ ε, image in [0, 1].
MSU defaults: ε = 10/255, α = 1/255, 10 iterations, ν = 1.0.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.attacks.base import ATTACKS
from engine.attacks.sign_gradient import SignGradientAttack, SignParams, l1_normalised, linf_presets
from engine.params import param


@dataclass
class MIFGSMParams(SignParams):
    momentum: float = param(1.0, min=0.0, max=10.0, help="momentum decay ν")


@ATTACKS.register("mifgsm")
class MIFGSM(SignGradientAttack):
    Params = MIFGSMParams
    presets = {"msu-default": {}, **linf_presets()}

    def direction(self, grad: torch.Tensor, state: dict) -> torch.Tensor:
        g = l1_normalised(grad)
        if "g" in state:
            g.add_(state["g"], alpha=self.params.momentum)
        state["g"] = g
        return g
