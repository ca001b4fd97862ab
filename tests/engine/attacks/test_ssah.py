"""SSAH: the differentiable Haar DWT and the low-frequency constraint."""
from __future__ import annotations

import torch

from engine.attacks.ssah import SSAH, haar_dwt, low_frequency_loss


def test_haar_is_orthonormal_and_ll_is_the_block_average():
    x = torch.rand(2, 3, 16, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    bands = haar_dwt(x)
    assert all(b.shape == (2, 3, 8, 6) for b in bands)
    energy = sum(b.pow(2).sum() for b in bands)
    assert torch.allclose(energy, x.pow(2).sum())
    avg = torch.nn.functional.avg_pool2d(x, 2)
    assert torch.allclose(bands[0], 2 * avg)
    # odd sizes are padded, not dropped
    assert haar_dwt(torch.rand(1, 3, 7, 9))[0].shape == (1, 3, 4, 5)


def test_haar_is_differentiable():
    x = torch.rand(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: haar_dwt(t)[0].sum() + haar_dwt(t)[3].pow(2).sum(), (x,))


def test_low_frequency_term_pulls_the_low_band_back(brisque, batch):
    """A larger λ gives a smaller low-band deviation. With MSU's λ = 0.1 the term is tiny next
    to the metric term (measured on BRISQUE: the LL loss changes by < 0.1 % against λ = 0),
    so the effect is shown with a large λ."""
    x = batch[:2]
    free = SSAH(lam=0.0, iters=5)(x, brisque).image
    held = SSAH(lam=100.0, iters=5)(x, brisque).image
    assert bool((low_frequency_loss(held, x) < low_frequency_loss(free, x)).all())
    assert float(low_frequency_loss(free, x).min()) > 0


def test_fast_ll_band_equals_the_transform():
    for shape in [(2, 3, 16, 12), (1, 3, 7, 9)]:
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
        from engine.attacks.ssah import haar_ll

        assert torch.allclose(haar_ll(x), haar_dwt(x)[0], atol=1e-6)


def test_low_band_loss_has_the_autograd_value_and_gradient():
    import torch.nn.functional as F

    from engine.attacks.ssah import haar_ll

    g = torch.Generator().manual_seed(3)
    x0 = torch.rand(2, 3, 8, 10, generator=g, dtype=torch.float64)
    x = (x0 + torch.randn(x0.shape, generator=g, dtype=torch.float64)).requires_grad_(True)  # |d| > 1 too
    fast = low_frequency_loss(x, x0)
    ref = F.smooth_l1_loss(haar_ll(x), haar_ll(x0), reduction="none").mean(dim=(1, 2, 3))
    assert torch.allclose(fast, ref)
    w = torch.tensor([0.3, -2.0], dtype=torch.float64)
    (gf,) = torch.autograd.grad((fast * w).sum(), x)
    (gr,) = torch.autograd.grad((ref * w).sum(), x)
    assert torch.allclose(gf, gr)
