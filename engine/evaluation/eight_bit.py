"""The attacked image as it is delivered: an 8-bit file (issue 23 §4).

An attacker hands over an 8-bit image; the lab scores x_a as float (as MSU's benchmarks
do). Every row also records the score of x_a rounded to the 8-bit grid, and how much of
the attack's gain survives the rounding:

=====================  ==================================================================
attacked_8bit          M(q(x_a)), q(x) = round(255·clamp(x, 0, 1)) / 255
                       (:func:`engine.evaluation.protocol.to_8bit_grid`; under the ``msu``
                       protocol x_a is on the grid already and this is M(x_a))
gain_kept_8bit         (M(q(x_a)) − M(x)) / (M(x_a) − M(x)): 1 all of the gain survives,
                       ≤ 0 none (NaN when the attack gained nothing)
gain_lost_8bit         the attack gained on the float image and not on the 8-bit one
                       (None when it gained nothing)
=====================  ==================================================================

Example:
    >>> eight_bit_columns(clean=1.0, attacked=2.0, attacked_8bit=1.5, lower_better=False)
    {'attacked_8bit': 1.5, 'gain_kept_8bit': 0.5, 'gain_lost_8bit': False}
"""
from __future__ import annotations

import math

from engine.evaluation.scores import attack_gained

EIGHT_BIT_COLUMNS = ["attacked_8bit", "gain_kept_8bit", "gain_lost_8bit"]


def eight_bit_columns(clean: float, attacked: float, attacked_8bit: float, lower_better: bool) -> dict:
    """The row's 8-bit columns (see the module doc)."""
    gained = attack_gained(clean, attacked, lower_better)
    gain = attacked - clean
    return {"attacked_8bit": attacked_8bit,
            "gain_kept_8bit": (attacked_8bit - clean) / gain if gained and gain != 0 else math.nan,
            "gain_lost_8bit": (not attack_gained(clean, attacked_8bit, lower_better)) if gained else None}
