"""Behaviour every DiffPure model must show, whatever its format (diffusers folder, ADM .pt)."""
from __future__ import annotations

import torch

from engine.defences import DEFENCES
from engine.defences._neural import resize
from tests.conftest import photo_tensor


def assert_same_draw_on_clean_and_attacked(model: str) -> None:
    """Same seed → the same output, and a slightly attacked image gets the same noise
    (its output is far closer than another seed's)."""
    d = DEFENCES.get("diffpure")(model=model, t=5)
    x = photo_tensor("astronaut", (32, 32))
    x_adv = (x + (2 / 255) * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    a = d(x, seed=5)
    assert torch.equal(a, d(x, seed=5))
    other_draw = (d(x, seed=6) - a).abs().mean()
    same_draw = (d(x_adv, seed=5) - a).abs().mean()
    assert same_draw < other_draw / 3


def assert_small_t_is_nearly_the_resize_round_trip(model: str) -> None:
    """t* = 1 barely changes the image beyond resizing to the model's 32×32 and back; t* = 20 does."""
    cls = DEFENCES.get("diffpure")
    x = photo_tensor("chelsea", (40, 56))
    round_trip = resize(resize(x, (32, 32)), (40, 56))
    near = (cls(model=model, t=1)(x, seed=2) - round_trip).abs().mean()
    far = (cls(model=model, t=20)(x, seed=2) - round_trip).abs().mean()
    assert near < 0.02 and far > 3 * near
