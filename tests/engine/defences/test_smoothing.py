"""The smoothing defences as registry components: parameters, presets, denoisers, errors."""
from __future__ import annotations

import pytest
import torch

from engine.defences import DEFENCES, DefenceError
from engine.spec.params import ParamError
from tests.conftest import photo_tensor

SMOOTHING = ("randomized-smoothing", "median-smoothing", "denoised-smoothing", "diffusion-smoothing", "densepure")


def test_registered_with_typed_params_and_sigma_presets():
    for name in SMOOTHING:
        cls = DEFENCES.get(name)
        assert cls.smooths_metric and cls.random
        specs = {s.name: s for s in cls.param_specs()}
        assert {"sigma", "n", "radius", "alpha"} <= set(specs)
        assert specs["n"].type is int and specs["sigma"].type is float and specs["alpha"].type is float
        assert [p["sigma"] for p in cls.presets.values()] == [0.12, 0.25, 0.5]
    with pytest.raises(ParamError, match="alpha"):
        DEFENCES.get("randomized-smoothing")(alpha=0.9)
    with pytest.raises(ParamError, match="bound"):
        DEFENCES.get("randomized-smoothing")(bound="chebyshev")
    assert not getattr(DEFENCES.get("jpeg"), "smooths_metric", False)


def test_denoised_smoothing_scores_the_restored_noisy_image(brisque):
    """Draw 0 is median-blur(clamp(x + σ ε₀)), ε₀ the seed's first draw, and the denoiser
    pulls the smoothed BRISQUE of noisy photos back toward the clean score."""
    x = photo_tensor("astronaut", (64, 64))
    d = DEFENCES.get("denoised-smoothing")(denoiser="median-blur:kernel_size=5", sigma=0.12, n=16,
                                           aggregate="median")
    eps = torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(3))
    expected = DEFENCES.get("median-blur")(kernel_size=5)((x + 0.12 * eps).clamp(0, 1))
    assert torch.allclose(d(x, seed=3), expected, atol=1e-6)
    plain = DEFENCES.get("median-smoothing")(sigma=0.12, n=16)
    for name in ("astronaut", "coffee", "chelsea"):
        x = photo_tensor(name, (64, 64))
        clean = float(brisque.score(x))
        denoised, noisy = float(d.certify(brisque, x, 3).score), float(plain.certify(brisque, x, 3).score)
        assert abs(denoised - clean) < abs(noisy - clean), (name, clean, denoised, noisy)


def test_random_denoiser_gets_a_seed_per_sample_the_same_for_clean_and_attacked():
    x = photo_tensor("coffee", (32, 32))
    d = DEFENCES.get("denoised-smoothing")(denoiser="random-noise:sigma=0.05", sigma=0.1, n=4)
    xs = torch.cat([x, x])
    z = d._samples(xs, [torch.zeros(x.shape[1:])] * 2, 0, seed=8)  # ε = 0: only the denoiser's draws
    assert not torch.equal(z[0], z[2])  # draws 0 and 1 get different denoiser seeds
    assert torch.equal(z[0], z[1]) and torch.equal(z[2], z[3])  # both images of a draw, the same
    assert torch.equal(d(x, seed=8), d(x, seed=8))


def test_denoiser_errors_are_clear(weights):
    with pytest.raises(ParamError, match="denoiser 'nope'.*unknown defence"):
        DEFENCES.get("denoised-smoothing")(denoiser="nope")
    with pytest.raises(ParamError, match="itself a smoothing defence"):
        DEFENCES.get("denoised-smoothing")(denoiser="median-smoothing")
    av = DEFENCES.get("denoised-smoothing").availability({"denoiser": "realesrgan"})
    assert av.state == "unavailable" and "realesr-general" in av.reason
    assert DEFENCES.get("denoised-smoothing").availability({"denoiser": "jpeg[q=30]"}).ok
    from engine.spec.experiment import ComponentSpec  # the CLI form: ';' for the denoiser's own parameters

    spec = ComponentSpec.parse("denoised-smoothing:denoiser=median-blur;kernel_size=7:n=4")
    d = DEFENCES.get("denoised-smoothing")(spec.params)
    assert d.denoiser.params.kernel_size == 7 and d.params.n == 4
    av = DEFENCES.get("diffusion-smoothing").availability()
    assert av.state == "unavailable" and "256x256_diffusion_uncond.pt" in av.reason
    with pytest.raises(DefenceError, match="256x256_diffusion_uncond.pt"):
        DEFENCES.get("densepure")(n=2)(photo_tensor("coffee", (32, 32)), seed=0)
