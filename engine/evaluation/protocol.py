"""Evaluation protocols: what the defences and the metric are shown after the attack.

- ``lab`` (default): the attacked image is the attack's float output, scored and
  defended as it is. Exact in-memory numbers; the experiments stored so far use it.
- ``msu``: MSU's ``metrics/defences/utils/defence_evaluate.py``. The attacked images
  are read back from 8-bit PNG files there, so the attacked image is first rounded to the
  8-bit grid (``round(x·255)/255``) and both its score and every defence see that image.
  The rest already is MSU's in both protocols: each defended image is scored at the size
  the defence returns (``resize`` literal: small; ``upscale`` literal: 384×512; random
  crop: the crop), and full-reference measures against an undefended image resize the
  defended one back to H×W first (bilinear, anti-aliased: torchvision's ``Resize``;
  :func:`engine.evaluation.pairs.align`), while the defended pair is compared as it is.
"""
from __future__ import annotations

import torch

from engine.spec.protocols import check_protocol

def to_8bit_grid(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded to the nearest multiple of 1/255 (what saving it as an 8-bit PNG and
    reading it back gives), clamped to [0, 1]."""
    return (x.clamp(0, 1) * 255).round() / 255


def attacked_for_protocol(x_adv: torch.Tensor, protocol: str) -> tuple[torch.Tensor, bool]:
    """The attacked image the defences and the metric see under ``protocol``.

    Args:
        x_adv: the attack's output :math:`(B, 3, H, W)`.
        protocol: ``lab`` or ``msu``.

    Returns:
        ``(image, changed)``: under ``msu`` the 8-bit image and True when it differs from
        ``x_adv`` (the attack's own score of ``x_adv`` then no longer applies).
    """
    if check_protocol(protocol) == "lab":
        return x_adv, False
    q = to_8bit_grid(x_adv)
    return q, not torch.equal(q, x_adv)
