"""Korhonen & You: the activity map, and a perturbation that hides in texture."""
from __future__ import annotations

import kornia
import torch

from engine.attacks.korhonen import Korhonen, disc_kernel, spatial_activity_map


def test_disc_kernel_is_a_5x5_disc():
    k = disc_kernel(5)
    assert k.shape == (5, 5) and k[2, 2] == 1 and k[0, 0] == 0 and k[0, 2] == 1
    assert torch.equal(k, k.T) and torch.equal(k, k.flip(0))


def test_activity_map_is_normalised_dilated_sobel_of_luma(batch):
    a = spatial_activity_map(batch)
    assert a.shape == (4, 1, 128, 128)
    assert torch.allclose(a.amax(dim=(1, 2, 3)), torch.ones(4))
    y = kornia.color.rgb_to_ycbcr(batch)[:, :1]
    s = kornia.filters.sobel(y, eps=0.0)
    s = s / s.amax(dim=(1, 2, 3), keepdim=True)
    assert bool((a >= s - 1e-6).all())  # dilation only grows the map
    # flat image: no activity anywhere
    assert float(spatial_activity_map(torch.full((1, 3, 16, 16), 0.5)).max()) == 0.0


def _concentration(x, x_adv):
    """Mean |δ| on the most active quarter of the pixels over the least active quarter."""
    a = spatial_activity_map(x).expand_as(x).flatten()
    d = (x_adv - x).abs().flatten()
    lo, hi = torch.quantile(a, torch.tensor([0.25, 0.75]))
    return float(d[a >= hi].mean() / d[a <= lo].mean().clamp_min(1e-12))


def test_perturbation_concentrates_where_activity_is_high(brisque, batch):
    x = batch[:2]
    step = Korhonen()(x, brisque).image
    literal = Korhonen(mask="gradient")(x, brisque).image
    c_step, c_literal = _concentration(x, step), _concentration(x, literal)
    assert c_step > 3.0, c_step
    # Adam normalises per pixel, so masking only the gradient spreads the perturbation
    assert c_step > 1.5 * c_literal, (c_step, c_literal)


def test_flat_regions_are_left_untouched(brisque):
    x = torch.full((1, 3, 64, 64), 0.4)
    x[..., 24:40, 24:40] = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    out = Korhonen(iters=3)(x, brisque).image
    act = spatial_activity_map(x).expand_as(x)
    assert bool(((out - x)[act == 0] == 0).all())
    assert float((out - x).abs().max()) > 0
