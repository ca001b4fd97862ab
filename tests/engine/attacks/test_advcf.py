"""AdvCF: the colour curve, its regulariser and the monotone constraint."""
from __future__ import annotations

import pytest
import torch

from engine.attacks.advcf import AdvCF, apply_color_curve, curve_regulariser
from tests.engine.attacks.helpers import is_monotone_curve


def test_uniform_pieces_are_the_identity_curve(batch):
    pieces = torch.full((4, 3, 64), 1 / 64)
    assert torch.allclose(apply_color_curve(batch, pieces), batch, atol=1e-6)
    assert torch.allclose(curve_regulariser(pieces), torch.zeros(4))


def test_any_non_negative_pieces_give_a_monotone_curve_onto_0_1():
    g = torch.Generator().manual_seed(0)
    pieces = torch.rand(2, 3, 64, generator=g) * (torch.rand(2, 3, 64, generator=g) > 0.3)
    ramp = torch.linspace(0, 1, 1001).view(1, 1, 1, -1).expand(2, 3, 1, 1001).contiguous()
    y = apply_color_curve(ramp, pieces)
    assert bool((y[..., 1:] >= y[..., :-1] - 1e-7).all())
    assert torch.allclose(y[..., 0], torch.zeros(2, 3, 1)) and torch.allclose(y[..., -1], torch.ones(2, 3, 1))
    assert float(curve_regulariser(pieces).min()) > 0


def test_attack_output_is_a_per_channel_monotone_curve_of_the_input(brisque, batch):
    x = batch[:2]
    out = AdvCF(lr=0.005, iters=8)(x, brisque)
    assert is_monotone_curve(x, out.image)
    assert not torch.equal(out.image, x)
    # a pixel-wise attack is not a curve: the check can fail
    noisy = (x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert not is_monotone_curve(x, noisy)


def test_defaults_are_msu():
    p = AdvCF().params
    assert (p.pieces, p.lr, p.reg, p.iters) == (64, 0.001, 0.5, 10)


@pytest.mark.parametrize("grid", [True, False])
def test_fast_curve_matches_the_reference_in_value_and_gradient(batch, grid):
    """8-bit input (lookup-table path) and arbitrary float input (per-pixel path)."""
    from engine.attacks.advcf import QuantisedCurve, quantise_straight_through

    g = torch.Generator().manual_seed(2)
    x = batch[:2] if grid else torch.rand(2, 3, 32, 48, generator=g)
    curve = QuantisedCurve(x, 64)
    assert curve.on_grid == grid
    p0 = torch.rand(2, 3, 64, generator=g) + 0.05
    w = torch.randn(x.shape, generator=g)
    pa, pb = p0.clone().requires_grad_(True), p0.clone().requires_grad_(True)
    ya = quantise_straight_through(apply_color_curve(x, pa))
    yb = curve(pb)
    assert torch.equal(ya, yb)
    (ga,) = torch.autograd.grad((ya * w).sum(), pa)
    (gb,) = torch.autograd.grad((yb * w).sum(), pb)
    assert torch.allclose(ga, gb, rtol=1e-4, atol=1e-4)
