"""FGSM (Goodfellow et al., 2015): one sign step of size ε on the MSU loss.

Constrains: L∞ ≤ ε, image in [0, 1]. MSU default ε = 10/255.

The defaults are MSU's code (``methods/std-fgsm/run.py`` of MSU_Metrics_Robustness_Benchmark:
x ← clamp(x − ε·sign(∇), 0, 1)); ``msu-default`` is checked against an independent loop in
the tests. That file's loss ignores ``lower_better``; we keep the metric's sign.
"""
from __future__ import annotations

from engine.attacks.base import ATTACKS
from engine.attacks.sign_gradient import SignGradientAttack, linf_presets


@ATTACKS.register("fgsm")
class FGSM(SignGradientAttack):
    """Single-step fast gradient sign method (``alpha`` and ``iters`` are ignored)."""
    cost_param = ""  # one step whatever iters says: no count to trade for time or queries

    presets = {"msu-default": {}, **linf_presets()}
    literal_presets = {"msu-default": "MSU_Metrics_Robustness_Benchmark/robustness_benchmark/methods/std-fgsm/run.py"}

    def step_size(self) -> float:
        return self.params.eps

    def num_iters(self) -> int:
        return 1
