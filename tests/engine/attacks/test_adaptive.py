"""Defence-aware attacks: M∘D through a differentiable D, with BPDA, and with EOT."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.attacks.adaptive import DefendedMetric, defence_aware_mode, target_metric
from engine.attacks.ifgsm import IFGSM
from engine.defences.base import Defence


class Blur(Defence):
    """Differentiable, deterministic: 3×3 box blur."""

    name = "test-blur"

    def forward(self, x, generator):
        return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


class Quantise(Defence):
    """Not differentiable (zero gradient almost everywhere), deterministic."""

    name = "test-quantise"
    differentiable = False

    def forward(self, x, generator):
        return torch.round(x * 16) / 16


class Noise(Defence):
    """Random, differentiable: additive Gaussian noise drawn from the seed."""

    name = "test-noise"
    random = True

    def forward(self, x, generator):
        return x + 0.03 * torch.randn(x.shape, generator=generator).to(x)


class RandomQuantise(Defence):
    """Random and not differentiable: quantisation with a random offset."""

    name = "test-random-quantise"
    random = True
    differentiable = False

    def forward(self, x, generator):
        off = torch.rand(1, generator=generator).item() / 16
        return torch.round((x + off) * 16) / 16 - off


def grad_of(metric, x):
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(metric.score(x, grad=True).sum(), x)
    return g


def defended_grad(metric, defence, x, mode):
    """Target M∘D, check the mode and that it scores M(D(x)); return its gradient at x."""
    dm, got = target_metric(metric, defence)
    assert got == mode
    assert torch.equal(dm.score(x), metric.score(defence(x)))
    return grad_of(dm, x)


def test_modes():
    assert defence_aware_mode(Blur()) == "through"
    assert defence_aware_mode(Quantise()) == "bpda"
    assert defence_aware_mode(Noise()) == "eot"
    assert defence_aware_mode(RandomQuantise()) == "eot"


def test_no_defence_is_direct(brisque):
    from engine.defences.identity import NoDefence

    m, mode = target_metric(brisque, NoDefence())
    assert m is brisque and mode == "direct"


def test_same_direction_bounds_and_range(brisque):
    dm, mode = target_metric(brisque, Quantise())
    assert mode == "bpda" and dm.mode == "bpda"
    assert (dm.lower_better, tuple(dm.bounds), dm.range, dm.sign) == (
        brisque.lower_better, tuple(brisque.bounds), brisque.range, brisque.sign)


def test_through_is_plain_autograd_through_the_defence(brisque, batch):
    x = batch[:2]
    g = defended_grad(brisque, Blur(), x, "through")
    xr = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(brisque.score(Blur()(xr), grad=True).sum(), xr)
    assert torch.allclose(g, expected, rtol=1e-4, atol=1e-6)


def test_bpda_gradient_is_the_gradient_at_the_defended_image(brisque, batch):
    x = batch[:2]
    q = Quantise()
    g = defended_grad(brisque, q, x, "bpda")
    assert torch.allclose(g, grad_of(brisque, q(x)), atol=1e-6)
    assert float(g.abs().max()) > 0
    # without BPDA the quantiser blocks the gradient entirely
    xr = x.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(brisque.score(q(xr), grad=True).sum(), xr)
    assert float(plain.abs().max()) == 0


def test_eot_is_the_mean_over_seeded_draws(brisque, batch):
    x = batch[:2]
    d = Noise()
    dm, mode = target_metric(brisque, d, eot_samples=3, seed=100)
    assert mode == "eot" and not dm.uses_bpda
    expected = sum(brisque.score(d(x, seed=100 + k)) for k in range(3)) / 3
    assert torch.allclose(dm.score(x), expected, atol=1e-5)
    assert torch.equal(dm.score(x), dm.score(x))  # reruns identical
    # autograd goes through every draw (including the defence's final clamp to [0, 1])
    xr = x.clone().requires_grad_(True)
    total = sum(brisque.score(d(xr, seed=100 + k), grad=True) for k in range(3)) / 3
    (g_expected,) = torch.autograd.grad(total.sum(), xr)
    assert torch.allclose(grad_of(dm, x), g_expected, rtol=1e-4, atol=1e-6)
    other, _ = target_metric(brisque, d, eot_samples=3, seed=200)
    assert not torch.equal(other.score(x), dm.score(x))


def test_eot_with_bpda_for_a_random_non_differentiable_defence(brisque, batch):
    x = batch[:1]
    d = RandomQuantise()
    dm, mode = target_metric(brisque, d, eot_samples=2, seed=7)
    assert mode == "eot" and dm.uses_bpda
    # BPDA per draw: the mean of the gradients taken at each defended image
    expected = sum(grad_of(brisque, d(x, seed=7 + k)) for k in range(2)) / 2
    assert torch.allclose(grad_of(dm, x), expected, rtol=1e-4, atol=1e-6)


def test_adaptive_attack_raises_the_defended_score(brisque, batch):
    """I-FGSM against M∘D (BPDA through a quantiser): the defended score improves."""
    x = batch[:3]
    q = Quantise()
    dm, mode = target_metric(brisque, q)
    assert mode == "bpda"
    out = IFGSM(eps=8 / 255, alpha=2 / 255)(x, dm)
    better = brisque.score(q(out.image)) < brisque.score(q(x))
    assert int(better.sum()) >= 2, better
    assert float((out.image - x).abs().max()) <= 8 / 255 + 1e-6


def test_forcing_through_on_a_non_differentiable_defence_is_refused(brisque):
    with pytest.raises(ValueError, match="not differentiable"):
        DefendedMetric(brisque, Quantise(), mode="through")


class Shrink(Defence):
    """Not differentiable and changes the size: 2× downsampling then quantisation."""

    name = "test-shrink"
    differentiable = False

    def forward(self, x, generator):
        return torch.round(F.avg_pool2d(x, 2) * 16) / 16


def test_bpda_for_a_size_changing_defence_resizes_the_gradient(brisque, batch):
    x = batch[:1]
    d = Shrink()
    g = defended_grad(brisque, d, x, "bpda")
    assert g.shape == x.shape and bool(torch.isfinite(g).all()) and float(g.abs().max()) > 0
    # the backward pass is the adjoint of a bilinear resize of ∇M at D(x)
    xr = x.clone().requires_grad_(True)
    up = F.interpolate(xr, size=(64, 64), mode="bilinear", align_corners=False)
    (expected,) = torch.autograd.grad((up * grad_of(brisque, d(x))).sum(), xr)
    assert torch.allclose(g, expected, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name,mode", [("jpeg", "bpda"), ("gaussian-blur", "through"), ("random-crop", "eot")])
def test_registered_defences_get_their_mode_and_a_gradient(name, mode, brisque, batch):
    from engine.defences import DEFENCES

    cls = DEFENCES.get(name)
    d = cls({"size": 96}) if name == "random-crop" else cls()
    dm, got = target_metric(brisque, d, eot_samples=2, seed=3)
    assert got == mode == defence_aware_mode(d)
    g = grad_of(dm, batch[:1])
    assert bool(torch.isfinite(g).all()) and float(g.abs().max()) > 0
