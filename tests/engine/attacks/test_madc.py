"""MADC: steps orthogonal to ∇RMSE and an RMSE shell that is never left."""
from __future__ import annotations

import torch

from engine.attacks.madc import MADC, project_orthogonal, pull_back, rmse


def test_projection_removes_the_rmse_direction():
    g = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    d = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    p = project_orthogonal(g, d)
    dots = (p * d).flatten(1).sum(1)
    assert torch.allclose(dots, torch.zeros(2), atol=1e-4)
    # autograd's ∇RMSE is parallel to d: the projected step keeps RMSE to first order
    x0 = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    x = (x0 + 0.05 * d[:1]).requires_grad_(True)
    (gr,) = torch.autograd.grad(rmse(x, x0).sum(), x)
    assert abs(float((project_orthogonal(g[:1], x.detach() - x0) * gr).sum())) < 1e-6
    # at d = 0 there is no RMSE gradient: g is unchanged
    assert torch.equal(project_orthogonal(g, torch.zeros_like(g)), g)


def test_pull_back_reaches_the_shell():
    x0 = torch.full((2, 3, 16, 16), 0.5)
    x = x0 + 0.2 * torch.sign(torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    x[1] = x0[1] + 0.01  # already inside: untouched
    out = pull_back(x, x0, 10 / 255, 0.0005)
    r = rmse(out, x0)
    assert float(r[0]) <= 10 / 255 and float(r[0]) > 10 / 255 - 0.001
    assert torch.equal(out[1], x[1])


def test_large_steps_stay_on_or_inside_the_rmse_shell(brisque, batch):
    x = batch[:3]
    shell = 4 / 255
    out = MADC(step=0.01, iters=6, rmse_max=shell)(x, brisque)
    r = rmse(out.image, x)
    assert bool((r <= shell + 1e-6).all()), r
    assert bool((r > shell - 0.002).all()), r  # the steps reached the shell: it is binding
    assert bool((brisque.score(out.image) < brisque.score(x)).all())


def test_defaults_are_msu():
    p = MADC().params
    assert (p.iters, p.step, p.pullback_step) == (8, 0.001, 0.0005)
    assert abs(p.rmse_max - 10 / 255) < 1e-12
