"""MI-FGSM (Dong et al., 2018): I-FGSM with momentum on the L1-normalised gradient.

Y. Dong, F. Liao, T. Pang, H. Su, J. Zhu, X. Hu, J. Li, "Boosting Adversarial Attacks
with Momentum", CVPR 2018.

g ← ν·g + ∇/mean|∇|; δ ← clip_ε(δ − α·sign(g)). Constrains: L∞ ≤ ε, image in [0, 1].
Defaults (the paper's recipe at MSU's budget): ε = 10/255, α = 1/255, 10 iterations, ν = 1.0.

Differences from MSU's code (``methods/mifgsm/run.py`` of MSU_Metrics_Robustness_Benchmark),
reproduced by the preset ``msu-literal`` (``normalise=False``):

* the momentum accumulates the raw gradient, g ← ∇ + ν·g: Dong et al.'s division by
  mean|∇| is absent, so with ν = 1 early iterations outweigh late ones by their gradient
  size;
* the benchmark's loss ignores ``lower_better`` (``1 − M/range``); we keep the metric's
  sign (what MSU's I-FGSM in adversarial-defenses-for-iqa does), otherwise the attack
  would make lower-is-better metrics worse;
* MSU runs one image per call; ours is per image in a batch (the same numbers).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.attacks.base import ATTACKS
from engine.attacks.sign_gradient import SignGradientAttack, SignParams, l1_normalised, linf_presets
from engine.spec.params import param

MSU_MIFGSM = "MSU_Metrics_Robustness_Benchmark/robustness_benchmark/methods/mifgsm/run.py"


@dataclass
class MIFGSMParams(SignParams):
    momentum: float = param(1.0, min=0.0, max=10.0, help="momentum decay ν")
    normalise: bool = param(True, help="divide the gradient by its mean |∇| before adding it to the "
                                       "momentum (Dong et al.); off = MSU's code")


def momentum_direction(grad: torch.Tensor, state: dict, momentum: float, normalise: bool) -> torch.Tensor:
    """g ← ∇' + ν·g with ∇' = ∇/mean|∇| (``normalise``) or ∇; kept in ``state["g"]``.

    Never returns ``grad`` itself (the caller may overwrite it with the sign)."""
    g = l1_normalised(grad) if normalise else grad.clone()
    if "g" in state:
        g.add_(state["g"], alpha=momentum)
    state["g"] = g
    return g


@ATTACKS.register("mifgsm")
class MIFGSM(SignGradientAttack):
    """Momentum iterative FGSM.

    Example:
        >>> out = MIFGSM.from_preset("msu-literal")(x, metric)
    """

    Params = MIFGSMParams
    presets = {"paper": {}, "msu-literal": {"normalise": False}, **linf_presets()}
    literal_presets = {"msu-literal": MSU_MIFGSM}

    def direction(self, grad: torch.Tensor, state: dict) -> torch.Tensor:
        return momentum_direction(grad, state, self.params.momentum, self.params.normalise)
