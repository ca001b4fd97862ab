"""PGD with random start (Madry et al., 2018) on the MSU loss.

δ₀ ~ U[−ε, ε] (drawn from the caller's generator on the CPU, so it is identical on every
device; in a batch each image draws from its own generator), then I-FGSM steps with
projection. Constrains: L∞ ≤ ε, image in [0, 1].

MSU publishes no PGD (neither adversarial-defenses-for-iqa nor the robustness benchmark), so
no preset claims its code: ``msu-budget`` (the defaults) is MSU's I-FGSM budget
(ε 10/255, α 1/255, 10 iterations) with the random start added.
"""
from __future__ import annotations

import torch

from engine.attacks.base import ATTACKS, Generators, rand_per_image
from engine.attacks.sign_gradient import SignGradientAttack, linf_presets


@ATTACKS.register("pgd")
class PGD(SignGradientAttack):
    presets = {"msu-budget": {}, **linf_presets()}

    def init_delta(self, x0: torch.Tensor, generator: Generators) -> torch.Tensor:
        eps = self.params.eps
        u = rand_per_image(x0.shape, generator)
        return ((2 * u - 1) * eps).to(device=x0.device, dtype=x0.dtype)
