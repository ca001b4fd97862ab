"""I-FGSM (Kurakin et al., 2017) on the MSU loss.

Constrains: L∞ ≤ ε around the original, image in [0, 1].
MSU defaults: ε = 10/255, α = 1/255, 10 iterations. On NIQE, α = 1/255 overshoots on most
photos (the score gets worse); α = 0.25/255 or ``keep_best`` helps (preset ``fine``).

The defaults are MSU's code (``metrics/methods/ifgsm/run.py`` of adversarial-defenses-for-iqa):
additive p, the image clamped to [0, 1] straight-through, a sign step on p, p clipped to
±ε; ``msu-default`` is checked against an independent loop in the tests. The robustness
benchmark's copy ignores ``lower_better`` in the loss; we keep the metric's sign.
"""
from __future__ import annotations

from engine.attacks.base import ATTACKS
from engine.attacks.sign_gradient import SignGradientAttack, linf_presets


@ATTACKS.register("ifgsm")
class IFGSM(SignGradientAttack):
    """Iterative fast gradient sign method.

    Example:
        >>> out = IFGSM(eps=4/255)(x, metric)
    """

    presets = {"msu-default": {}, "fine": {"alpha": 0.25 / 255}, "best-iterate": {"keep_best": True},
               **linf_presets()}
    literal_presets = {"msu-default": "adversarial-defenses-for-iqa/metrics/methods/ifgsm/run.py"}
