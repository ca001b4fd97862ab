"""Classical metrics give the same scores at any thread count and batch size (issue 23 §3).

BRISQUE's and NIQE's feature statistics are reductions; in float32 their value depends on
how the reduction is split across threads (measured: BRISQUE −7.1293 vs −7.1303 at one
and two threads). They compute in float64 inside the metric, so local (two threads), Ray
(one thread per worker) and batched rows agree within 1e-6 relative.
"""
from __future__ import annotations

import pytest
import torch

from engine.metrics import create_metric
from tests.conftest import photo_tensor

NAMES = ("astronaut", "coffee", "chelsea")


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.cat([photo_tensor(n, (256, 384)) for n in NAMES])


@pytest.mark.parametrize("name", ["brisque", "niqe"])
def test_scores_do_not_depend_on_thread_count_or_batch(name, batch):
    metric = create_metric(name)
    threads = torch.get_num_threads()
    try:
        scores = {}
        for t in (1, 2):
            torch.set_num_threads(t)
            scores[(t, "batch")] = metric.score(batch).double()
            scores[(t, "one")] = torch.cat([metric.score(batch[i:i + 1]) for i in range(len(NAMES))]).double()
    finally:
        torch.set_num_threads(threads)
    ref = scores[(1, "one")]
    for key, s in scores.items():
        assert torch.allclose(s, ref, rtol=1e-6, atol=0), key


@pytest.mark.parametrize("name", ["brisque", "niqe"])
def test_the_statistics_are_computed_in_float64(name, batch):
    """The score is pyiqa's network run on the float64 image, returned as float32 (and
    differs from the float32 computation, so the cast is what makes it)."""
    metric = create_metric(name)
    with torch.no_grad():
        want = metric.net(batch.double()).reshape(-1)
        in32 = metric.net(batch).reshape(-1).double()
    got = metric.score(batch)
    assert got.dtype == torch.float32
    assert torch.allclose(got.double(), want, rtol=1e-7, atol=0)
    assert not torch.allclose(in32, want, rtol=1e-7, atol=0)


def test_gradients_reach_a_float32_input(batch):
    metric = create_metric("brisque")
    x = batch[:1].clone().requires_grad_(True)
    metric.score(x, grad=True).sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32 and x.grad.abs().sum() > 0
