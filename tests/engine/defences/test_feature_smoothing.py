"""feature-smoothing (FS-IQA): noise on a learned metric's features, certified at a pixel
radius through the backbone Jacobian's largest singular value."""
from __future__ import annotations

import pytest
import torch
from scipy.stats import norm
from torch import nn

from engine.defences import DEFENCES, DefenceError
from engine.defences.feature_smoothing import backbone_features, find_head, top_singular_value
from engine.metrics.base import Metric
from tests.conftest import photo_tensor


class Scale(nn.Module):
    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.k * t


class LinearBackboneMetric(Metric):
    """Backbone = a fixed linear map (a 3→4-channel 3×3 conv, stride 2, then flatten), so
    its Jacobian is that map everywhere and σ_max is its exact Lipschitz constant; head =
    a small MLP ending in a sigmoid ×100 (bounds 0…100)."""

    bounds = (0.0, 100.0)

    def __init__(self, side: int = 16, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
        self.conv.weight.data = torch.randn(self.conv.weight.shape, generator=g) * 0.3
        d = 4 * (side // 2) ** 2
        self.head = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, 1), nn.Sigmoid(), Scale(100.0))
        for m in self.head:
            if isinstance(m, nn.Linear):
                m.weight.data = torch.randn(m.weight.shape, generator=g) / m.in_features ** 0.5
                m.bias.data.zero_()
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1)).reshape(-1)


def jacobian_matrix(fn, x: torch.Tensor) -> torch.Tensor:
    """The exact Jacobian of fn at one image, as a (outputs × inputs) matrix."""
    j = torch.autograd.functional.jacobian(lambda z: fn(z).flatten(), x)
    return j.reshape(j.shape[0], -1)


def test_power_iteration_matches_the_exact_svd_of_a_small_jacobian():
    """A small nonlinear backbone (conv → tanh → conv) at a random 6×6 image: the estimate
    equals the largest singular value of the explicit Jacobian, for each image of a batch
    (each block converges on its own), and never exceeds it."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.Tanh(), nn.Conv2d(5, 2, 3, padding=1)).requires_grad_(False)
    x = torch.rand(2, 3, 6, 6)
    est = top_singular_value(net, x, iters=150, generator=torch.Generator().manual_seed(1))
    for i in range(2):
        exact = torch.linalg.svdvals(jacobian_matrix(net, x[i:i + 1]))[0]
        assert float(est[i]) == pytest.approx(float(exact), rel=1e-3)
        assert float(est[i]) <= float(exact) * (1 + 1e-5)
    few = top_singular_value(net, x[:1], iters=2, generator=torch.Generator().manual_seed(1))
    assert float(few[0]) <= float(est[0]) * (1 + 1e-5)  # power iteration approaches from below


def test_certified_interval_of_a_linear_backbone_is_the_lemma_with_r_times_sigma_max():
    metric = LinearBackboneMetric()
    x = photo_tensor("astronaut", (16, 16))
    fs = DEFENCES.get("feature-smoothing")(sigma=0.5, n=200, radius=0.1, power_iters=200)
    c = fs.certify(metric, x, seed=4)
    exact = torch.linalg.svdvals(jacobian_matrix(lambda z: metric.conv(z), x))[0]
    assert float(c.lipschitz[0]) == pytest.approx(float(exact), rel=1e-3)
    assert float(c.feature_radius[0]) == pytest.approx(0.1 * float(exact), rel=1e-3)
    # re-derived: g = mean of h/100, Hoeffding t, [Φ(Φ⁻¹(g − t) − r_f/σ), Φ(Φ⁻¹(g + t) + r_f/σ)]·100
    y = c.samples[:, 0].double() / 100
    g, t = float(y.mean()), (torch.log(torch.tensor(2 / 0.001)) / (2 * 200)).sqrt().item()
    shift = 0.1 * float(c.lipschitz[0]) / 0.5
    assert float(c.score[0]) == pytest.approx(100 * g, abs=1e-4)
    assert float(c.low[0]) == pytest.approx(100 * norm.cdf(norm.ppf(g - t) - shift), abs=1e-3)
    assert float(c.high[0]) == pytest.approx(100 * norm.cdf(norm.ppf(g + t) + shift), abs=1e-3)
    assert float(c.low[0]) < float(c.score[0]) < float(c.high[0])


def _worst_directions(metric: Metric, x: torch.Tensor, fs, r: float) -> list[torch.Tensor]:
    """Perturbations of L2 norm r: random ones, the top singular direction of the backbone
    (±), and the gradient of the smoothed score (±), kept in [0, 1] by staying inside."""
    g = torch.Generator().manual_seed(9)
    dirs = [torch.randn(x.shape, generator=g) for _ in range(3)]
    head = find_head(metric, fs.params.head)
    xx = x.clone().requires_grad_(True)
    feats = backbone_features(metric, head, xx)
    eps = torch.randn((32, *feats.shape[1:]), generator=torch.Generator().manual_seed(1))
    smoothed = torch.stack([head(feats + fs.params.sigma * e[None]).sum() for e in eps]).mean()
    dirs.append(torch.autograd.grad(smoothed, xx)[0])
    out = []
    for d in dirs:
        d = d / d.norm() * r
        out += [x + d, x - d]
    return out


@pytest.mark.parametrize("case", ["linear-backbone", "metaiqa-random"])
def test_interval_holds_for_perturbations_within_the_radius(case, request):
    """The attacked image's smoothed score (same seed: same feature noise) lies in the
    clean interval for every perturbation with ‖δ‖₂ ≤ r — on a metric whose backbone has a
    known Lipschitz constant (exact certificate) and on MetaIQA's architecture with random
    weights (the paper's first-order certificate at a small radius)."""
    if case == "linear-backbone":
        metric = LinearBackboneMetric()
        x = photo_tensor("coffee", (16, 16)).clamp(0.05, 0.95)
        fs = DEFENCES.get("feature-smoothing")(sigma=1.0, n=256, radius=0.05, bound="bernstein")
    else:
        metric = request.getfixturevalue("metaiqa")
        x = photo_tensor("chelsea", (64, 64)).clamp(0.05, 0.95)
        fs = DEFENCES.get("feature-smoothing")(sigma=0.25, n=64, radius=0.02, power_iters=8)
    c = fs.certify(metric, x, seed=2)
    lo, hi = float(c.low[0]), float(c.high[0])
    assert hi - lo < 0.6 * metric.range  # not vacuous
    for xa in _worst_directions(metric, x, fs, fs.params.radius):
        assert float((xa - x).norm()) <= fs.params.radius * (1 + 1e-5)
        s = float(fs.certify(metric, xa, seed=2).score[0]) if case == "linear-backbone" else \
            float(fs.feature_samples(metric, xa, seed=2).mean())
        assert lo <= s <= hi, (lo, s, hi)
    # and a perturbation far outside the radius along the gradient does leave the interval
    # (so the check above can fail): 400× the radius on the linear backbone
    if case == "linear-backbone":
        down = _worst_directions(metric, x, fs, 400 * fs.params.radius)[7]  # against the smoothed gradient
        assert float(fs.certify(metric, down, seed=2).score[0]) < lo


@pytest.fixture(scope="module")
def metaiqa():
    from engine.metrics import create_metric

    return create_metric("metaiqa", device="cpu", pretrained=False)


def test_metaiqa_head_is_found_and_reproduces_the_score(metaiqa):
    x = photo_tensor("rocket", (64, 64))
    head = find_head(metaiqa)
    assert head is metaiqa.net.head
    feats = backbone_features(metaiqa, head, x)
    assert feats.shape == (1, 1000)
    assert torch.allclose(head(feats).reshape(-1), metaiqa.score(x), atol=1e-6)


def test_same_seed_same_certificate_and_sigma_zero_noise_is_the_plain_score(metaiqa):
    x = photo_tensor("coffee", (64, 64))
    fs = DEFENCES.get("feature-smoothing")(n=16, lipschitz=2.0)
    a, b = fs.certify(metaiqa, x, seed=7), fs.certify(metaiqa, x, seed=7)
    assert torch.equal(a.samples, b.samples) and torch.equal(a.low, b.low)
    c = fs.certify(metaiqa, x, seed=8)
    assert not torch.equal(a.samples, c.samples)
    assert float(a.feature_radius[0]) == pytest.approx(2.0 * fs.params.radius)
    est = DEFENCES.get("feature-smoothing")(power_iters=2)
    assert torch.equal(est.lipschitz_at(metaiqa, x, seed=7), est.lipschitz_at(metaiqa, x, seed=7))
    tiny = DEFENCES.get("feature-smoothing")(n=4, sigma=1e-4, lipschitz=1.0).certify(metaiqa, x, seed=7)
    assert float(tiny.score[0]) == pytest.approx(float(metaiqa.score(x)[0]), abs=1e-4)
    assert torch.equal(fs(x, seed=3), x)  # the image itself is untouched


def test_a_metric_without_features_or_a_wrong_head_gives_a_clear_error(brisque, metaiqa):
    x = photo_tensor("coffee", (64, 64))
    with pytest.raises(DefenceError, match="no known backbone/head split"):
        DEFENCES.get("feature-smoothing")(n=4).certify(brisque, x, seed=0)
    with pytest.raises(DefenceError, match="no module"):
        DEFENCES.get("feature-smoothing")(n=4, head="net.nothing").certify(metaiqa, x, seed=0)
    with pytest.raises(DefenceError, match="does not reproduce"):  # fc3 is inside the head
        DEFENCES.get("feature-smoothing")(n=4, head="net.head.fc3").certify(metaiqa, x, seed=0)
    with pytest.raises(DefenceError, match="512 values per image"):  # fc2 outputs features
        DEFENCES.get("feature-smoothing")(n=4, head="net.head.fc2").certify(metaiqa, x, seed=0)


def test_registered_as_a_smoothing_defence():
    cls = DEFENCES.get("feature-smoothing")
    assert cls.smooths_metric and cls.random and "feature-smoothing" in DEFENCES.names()
    specs = {s.name for s in cls.param_specs()}
    assert {"sigma", "n", "radius", "alpha", "bound", "head", "power_iters", "lipschitz"} <= specs
    assert [p["sigma"] for p in cls.presets.values()] == [0.12, 0.25, 0.5]
