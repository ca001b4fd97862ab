"""Known answers of the full-reference pair measures (engine/evaluation/pairs.py) on
non-square images: alignment of different sizes, SSIM's window on small images, batches.

Every expected value is derived here by hand or by an independent numpy/scipy reference,
never read back from the code under test.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import correlate1d

from engine.evaluation.pairs import PSNR_CAP_DB, align, compare, linf, mae, mse, psnr, ssim
from tests.conftest import photo_tensor


def _ramp_along_width(h: int, w: int, step: float) -> torch.Tensor:
    """1×3×h×w image whose value is ``step·column`` (constant down each column)."""
    row = torch.arange(w, dtype=torch.float32) * step
    return row.expand(1, 3, h, w).clone()


def test_same_size_is_returned_untouched():
    a = torch.rand(1, 3, 9, 14, generator=torch.Generator().manual_seed(0))
    b = torch.rand(1, 3, 9, 14, generator=torch.Generator().manual_seed(1))
    assert align(a, b) is b  # no resampling (not even an exact one) when the sizes agree


def test_upsampling_a_non_square_ramp_has_the_half_pixel_known_answer():
    """b (5×7) resized to a's 10×14: output column j samples b at x = (j + ½)/2 − ½
    (pixel centres, align_corners=False), so a linear ramp gives step·clamp(x, 0, 6)."""
    a = torch.zeros(1, 3, 10, 14)
    b = _ramp_along_width(5, 7, 0.1)
    out = align(a, b)
    assert out.shape == (1, 3, 10, 14)  # H and W not swapped
    x = (torch.arange(14, dtype=torch.float32) + 0.5) / 2 - 0.5
    expected = (0.1 * x.clamp(0, 6)).expand(1, 3, 10, 14)
    assert torch.allclose(out, expected, atol=1e-6), out[0, 0, 0]
    # the other axis is constant: nothing leaked from the width into the height
    assert torch.equal(out[:, :, :1].expand_as(out), out)


def test_upsampling_along_the_height_only():
    """A ramp down the rows of a 6×4 image, resized to 12×4: the same half-pixel rule on H."""
    b = _ramp_along_width(4, 6, 0.1).transpose(-1, -2).contiguous()  # 6 rows × 4 columns
    out = align(torch.zeros(1, 3, 12, 4), b)
    y = (torch.arange(12, dtype=torch.float32) + 0.5) / 2 - 0.5
    assert torch.allclose(out[0, 0, :, 2], 0.1 * y.clamp(0, 5), atol=1e-6)


def test_downsampling_is_antialiased():
    """b is 8×16 with columns 0,0,1,1,0,0,1,1,…; halved to 4×8. With antialiasing the
    bilinear (triangle) filter is stretched ×2: output column j is centred at input
    2j + ½ with taps at distances 3/2, ½, ½, 3/2 → weights 1/8, 3/8, 3/8, 1/8, so the
    inner columns are 1/8·1 + 1/8·0 … = ¼ or ¾. Plain bilinear would give 0 and 1."""
    cols = torch.tensor([0.0, 0.0, 1.0, 1.0] * 4)
    b = cols.expand(1, 3, 8, 16).clone()
    out = align(torch.zeros(1, 3, 4, 8), b)
    assert out.shape == (1, 3, 4, 8)
    inner = out[0, 0, 0, 1:-1]
    assert torch.allclose(inner, torch.tensor([0.75, 0.25, 0.75, 0.25, 0.75, 0.25]), atol=1e-6), inner


def test_aligned_images_stay_in_the_unit_range():
    """Slightly out-of-range input (a defence's float overshoot) comes back inside [0, 1]."""
    b = torch.linspace(-0.25, 1.25, 5 * 7).reshape(1, 1, 5, 7).expand(1, 3, 5, 7)
    out = align(torch.zeros(1, 3, 10, 14), b)
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    assert bool(((out > 0) & (out < 1)).any())  # not collapsed to one value


def test_measures_of_a_crop_against_its_source_use_the_aligned_image():
    """x is 12×20; its 6×10 block-average is the 'defended' image. compare() aligns it back
    to 12×20 and measures against x: the numbers equal those of x against align(x, small)."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 12, 20, generator=g)
    small = torch.nn.functional.avg_pool2d(x, 2)
    back = align(x, small)
    m = compare(x, small)
    d = (x - back).flatten()
    assert m["mse"] == pytest.approx(float(d.pow(2).mean()), rel=1e-6)
    assert m["mae"] == pytest.approx(float(d.abs().mean()), rel=1e-6)
    assert m["l_inf"] == pytest.approx(float(d.abs().max()), rel=1e-6)
    assert m["psnr"] == pytest.approx(10 * np.log10(1 / float(d.pow(2).mean())), rel=1e-6)
    assert 0 < m["ssim"] < 1


def test_pointwise_measures_on_non_zero_images():
    a = torch.full((1, 3, 6, 10), 0.5)
    b = torch.full((1, 3, 6, 10), 0.3)
    b[..., 0, 0] = 0.9  # one pixel on the other side of a
    n = 3 * 6 * 10
    assert mse(a, b).item() == pytest.approx(((n - 3) * 0.04 + 3 * 0.16) / n)
    assert mae(a, b).item() == pytest.approx(((n - 3) * 0.2 + 3 * 0.4) / n)
    assert linf(a, b).item() == pytest.approx(0.4)
    assert psnr(a, a).item() == PSNR_CAP_DB


def _ssim_reference(a: np.ndarray, b: np.ndarray, window: int, sigma: float = 1.5) -> float:
    """SSIM (Wang et al. 2004) with a normalised Gaussian window, 'same' borders by
    reflection without repeating the edge (scipy's 'mirror'), C1 = 0.01², C2 = 0.03²,
    averaged over channels and pixels. ``a``, ``b``: C×H×W in [0, 1]."""
    ax = np.arange(window) - (window - 1) / 2
    k = np.exp(-ax ** 2 / (2 * sigma ** 2))
    k /= k.sum()

    def blur(t: np.ndarray) -> np.ndarray:
        return correlate1d(correlate1d(t, k, axis=-1, mode="mirror"), k, axis=-2, mode="mirror")

    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    m = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(m.mean())


@pytest.mark.parametrize("size, window", [
    ((40, 24), 11),   # the full 11-px window
    ((12, 30), 11),   # shorter side 12 → the largest odd window below it is 11
    ((7, 12), 5),     # shorter side 7 → 5 (odd, leaves a border of 1 on the short side)
    ((4, 9), 3),      # the smallest window
])
def test_ssim_window_shrinks_on_small_non_square_images(size, window):
    g = torch.Generator().manual_seed(size[0] * 100 + size[1])
    a = photo_tensor("astronaut", size)  # structure at every scale: the window size shows
    b = (a + 0.1 * torch.randn(1, 3, *size, generator=g)).clamp(0, 1)
    got = ssim(a, b).item()
    want = _ssim_reference(a[0].numpy(), b[0].numpy(), window)
    assert got == pytest.approx(want, abs=1e-5)
    # the window matters: the neighbouring odd windows up to 11 give clearly different
    # values (beyond 11 px the σ = 1.5 Gaussian adds almost nothing)
    for other in (window - 2, window + 2):
        if 3 <= other <= 11 and other < min(size):
            assert abs(_ssim_reference(a[0].numpy(), b[0].numpy(), other) - got) > 1e-3


def test_ssim_is_per_image_and_exactly_one_for_identical_images():
    g = torch.Generator().manual_seed(5)
    a = torch.rand(2, 3, 16, 24, generator=g)
    a[0] = 0.1  # flat: kornia alone gives 1 − ~1e-6 for this identical pair
    b = a.clone()
    b[1] = (b[1] + 0.2 * torch.randn(3, 16, 24, generator=g)).clamp(0, 1)
    out = ssim(a, b)
    assert out.shape == (2,)
    assert out[0].item() == 1.0  # exactly, although the second pair differs
    assert out[1].item() == pytest.approx(_ssim_reference(a[1].numpy(), b[1].numpy(), 11), abs=1e-5)
    flat = torch.full((1, 3, 16, 24), 0.1)
    assert ssim(flat, flat).item() == 1.0  # a flat image: kornia alone would give 1 − ~1e-6
