"""Presets that reproduce MSU's published attack code (issue 15), each against the plain
reference loop of ``msu_reference.py`` on small real photos with the real BRISQUE."""
from __future__ import annotations

import pytest
import torch

from engine.attacks import ATTACKS
from engine.attacks.korhonen import Korhonen, msu_activity_map, spatial_activity_map
from engine.attacks.ssah import SSAH
from engine.metrics.base import Metric
from tests.conftest import photo_tensor
from tests.engine.attacks.msu_reference import (REFERENCES, UNIVERSAL_REFERENCES, msu_korhonen_map, msu_ssah,
                                               msu_uap_apply, per_image)

#: the attacks whose defaults follow the paper and whose ``msu-literal`` preset differs
PAPER_VS_CODE = ("mifgsm", "amifgsm", "korhonen", "ssah")


def photos(size: tuple[int, int] = (96, 96)) -> torch.Tensor:
    return torch.cat([photo_tensor(n, size) for n in ("astronaut", "coffee")])


def test_every_literal_preset_has_a_reference_loop():
    literal = {(n, label) for n in ATTACKS.names() for label in ATTACKS.get(n).literal_presets}
    assert literal == set(REFERENCES) | set(UNIVERSAL_REFERENCES)
    for name, label in literal:
        assert label in ATTACKS.get(name).presets
    # no preset is called msu-default unless it is MSU's code
    for name in ATTACKS.names():
        cls = ATTACKS.get(name)
        if "msu-literal" in cls.presets:
            assert "msu-default" not in cls.presets and cls.presets["paper"] == {}, name


@pytest.mark.parametrize("name,preset", sorted(REFERENCES))
def test_literal_preset_equals_the_reference_loop(name, preset, brisque):
    x = photos()
    expected = per_image(REFERENCES[(name, preset)], x, brisque)
    got = ATTACKS.get(name).from_preset(preset)(x, brisque).image
    assert got.shape == x.shape
    assert torch.allclose(got, expected, atol=2e-5), float((got - expected).abs().max())
    assert float((got - x).abs().max()) > 0.5 / 255  # the loop is not trivially satisfied


@pytest.mark.parametrize("name", PAPER_VS_CODE)
def test_the_papers_recipe_is_not_the_code(name, brisque):
    """The default (paper) recipe lands measurably away from MSU's loop, so the literal
    preset is what makes the match."""
    x = photos()[:1]
    expected = REFERENCES[(name, "msu-literal")](x, brisque)
    paper = ATTACKS.get(name).from_preset("paper")(x, brisque).image
    assert float((paper - expected).abs().max()) > 1e-3


def test_uap_literal_applies_a_file_as_msus_evaluation(tmp_path, brisque):
    from engine.attacks.uap import UAP, save_uap

    delta = (torch.rand(1, 3, 40, 36, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.1
    path = save_uap(tmp_path / "d.pt", delta)
    x = photos((96, 100))
    got = UAP.from_preset("msu-literal", perturbation=str(path))(x, brisque).image
    uap = delta[0].permute(1, 2, 0).numpy()
    expected = torch.cat([msu_uap_apply(x[i:i + 1], uap) for i in range(2)])
    assert torch.allclose(got, expected, atol=1e-6)
    assert float((got - x).abs().max()) == pytest.approx(0.02, abs=1e-3)  # 0.2 × 0.1
    # the paper preset resizes the same file instead (and clips it to ε = 10/255)
    paper = UAP.from_preset("paper", perturbation=str(path))(x, brisque).image
    assert float((paper - expected).abs().max()) > 0.01


def test_korhonen_map_is_msus_signed_horizontal_sobel():
    for name in ("astronaut", "chelsea", "rocket"):
        x = photo_tensor(name, (64, 80))
        a = msu_activity_map(x)
        assert a.shape == (1, 1, 64, 80)
        assert torch.allclose(a, msu_korhonen_map(x), atol=1e-6)
        assert float(a.amax()) == pytest.approx(1 / 255) and float(a.amin()) < 0  # signed
    # a horizontal edge has no horizontal derivative at all: MSU's map is then all ones
    # (its max is 0), while the paper's magnitude map marks the edge only
    edge = torch.zeros(1, 3, 32, 32)
    edge[..., 16:, :] = 1.0
    assert torch.equal(msu_activity_map(edge), torch.full((1, 1, 32, 32), 1 / 255))
    paper = spatial_activity_map(edge)
    assert float(paper[..., 16, :].amin()) == 1.0 and float(paper[..., 0, :].amax()) == 0.0


def test_ssah_literal_low_band_term_holds_the_block_means(brisque):
    """MSU's summed term pulls the 2×2 block means back at λ = 0.1; our mean term at the
    same λ acts like no term at all."""
    from engine.attacks.ssah import block_means

    x = photos()

    def drift(a: torch.Tensor) -> torch.Tensor:
        return (block_means(a) - block_means(x)).abs().flatten(1).mean(dim=1)

    literal = drift(SSAH.from_preset("msu-literal")(x, brisque).image)
    paper = drift(SSAH.from_preset("paper")(x, brisque).image)
    free = drift(SSAH(lam=0.0)(x, brisque).image)
    assert bool((literal < 0.85 * paper).all()), (literal, paper)
    assert torch.allclose(paper, free, rtol=0.01)


def test_korhonen_msu_map_needs_the_gradient_mask(brisque):
    with pytest.raises(ValueError, match="mask='gradient'"):
        Korhonen(activity="msu-code", mask="step")(photos()[:1], brisque)


def test_ssah_literal_zero_pads_odd_sizes_like_the_reference(brisque):
    x = photo_tensor("chelsea", (65, 63))
    recs = []
    gen = SSAH.from_preset("msu-literal").run(x, brisque)
    try:
        while True:
            recs.append(next(gen))
    except StopIteration as stop:
        out = stop.value
    assert out.image.shape == x.shape
    assert torch.allclose(out.image, msu_ssah(x, brisque), atol=2e-5)
    # the step records describe the cropped image
    assert recs[-1].linf == pytest.approx(float((out.image - x).abs().max()), abs=1e-6)


class _NaNGradMetric(Metric):
    """Mean brightness, plus a term with a finite value but a NaN gradient at one pixel."""

    bounds = (0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corner = x[:, 0, 0, 0] - 2.0  # < 0, so where() returns 0 but back-propagates 0·NaN
        return x.mean(dim=(1, 2, 3)) + torch.where(corner > 0, corner.sqrt(), torch.zeros_like(corner))


@pytest.mark.parametrize("name", ["korhonen", "ssah"])
def test_literal_adam_attacks_zero_nan_gradients(name):
    metric = _NaNGradMetric()
    x = photos((32, 32))[:1]
    xg = x.clone().requires_grad_(True)
    metric.score(xg, grad=True).sum().backward()
    assert bool(torch.isnan(xg.grad).any()) and torch.isfinite(metric.score(x)).all()
    got = ATTACKS.get(name).from_preset("msu-literal")(x, metric).image
    assert torch.isfinite(got).all()
    assert torch.allclose(got, REFERENCES[(name, "msu-literal")](x, metric), atol=1e-6)
    assert float((got - x).abs().max()) > 0


def test_pixel_adam_gradients_take_the_images_memory_layout():
    """Fused Adam pairs elements by memory order: a channels-last gradient (as BRISQUE's)
    must be copied into the image's layout, or the wrong pixels move."""
    from engine.attacks._pixel_adam import make_adam, same_layout

    g = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    g = g.contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    fused, plain = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    opt_f, opt_p = make_adam(fused, 0.01), torch.optim.Adam([plain], lr=0.01)
    fused.grad, plain.grad = same_layout(g, fused), g.clone()
    opt_f.step()
    opt_p.step()
    assert fused.grad.stride() == fused.stride()
    assert torch.allclose(fused, plain, atol=1e-6)
