"""NIQE and BRISQUE through pyiqa with their real parameter files, on real photos."""
from __future__ import annotations

import pytest
import torch

from engine.metrics import metric_info
from engine.core.bounds import MSU_BOUNDS
from tests.conftest import photo_tensor

NAMES = ("astronaut", "coffee", "chelsea")


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.cat([photo_tensor(n, (128, 128)) for n in NAMES])


@pytest.fixture(params=["niqe", "brisque"])
def metric(request):
    return request.getfixturevalue(request.param)


def test_ready_with_shared_parameter_files(metric):
    info = metric_info(metric.name)
    assert info["availability"].state == "ready"
    assert info["source"] == "pyiqa"


def test_properties_match_msu(metric):
    assert metric.lower_better is True
    assert metric.sign == -1.0
    assert metric.bounds == MSU_BOUNDS[metric.name]
    assert metric.range == pytest.approx(abs(MSU_BOUNDS[metric.name][0] - MSU_BOUNDS[metric.name][1]))


def test_per_image_scores_are_finite_and_distinct(metric, batch):
    s = metric.score(batch)
    assert s.shape == (len(NAMES),)
    assert s.dtype == torch.float32
    assert torch.isfinite(s).all()
    assert len({round(v, 3) for v in s.tolist()}) == len(NAMES)


def test_batch_equals_one_by_one(metric, batch):
    together = metric.score(batch[:2])
    alone = torch.cat([metric.score(batch[i:i + 1]) for i in range(2)])
    torch.testing.assert_close(together, alone, rtol=1e-3, atol=1e-2)


def test_gradient_reaches_the_input_per_image(metric, batch):
    x = batch[:2].clone().requires_grad_(True)
    s = metric.score(x, grad=True)
    assert s.shape == (2,) and s.requires_grad
    s[0].backward()
    g = x.grad
    assert torch.isfinite(g).all()
    assert g[0].abs().sum() > 0
    assert g[1].abs().sum() == 0  # per-image: image 1 does not affect image 0's score


def test_no_graph_without_grad(metric, batch):
    s = metric.score(batch[:1].clone().requires_grad_(True))
    assert not s.requires_grad


def test_degradation_moves_the_score_the_wrong_way(metric, batch):
    """Heavy noise must look worse to both metrics (a sanity check of the direction)."""
    g = torch.Generator().manual_seed(0)
    clean = batch[:2]
    noisy = (clean + 0.2 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    assert ((metric.score(noisy) - metric.score(clean)) * metric.sign < 0).all()
