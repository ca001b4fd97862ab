"""PGD-L2: stays in the L2 ball per image, starts inside it, raises the score."""
from __future__ import annotations

import torch

from engine.attacks import ATTACKS
from engine.attacks.pgd_l2 import PGDL2, l2_project
from tests.engine.attacks.helpers import improved, run_all


def test_projection_keeps_inside_points_and_scales_outside_ones():
    d = torch.zeros(2, 3, 4, 4)
    d[0, 0, 0, 0] = 0.3          # inside r = 0.5: unchanged
    d[1, 1, 2, 2] = 2.0          # outside: scaled to the sphere
    out = l2_project(d.clone(), 0.5)
    assert torch.equal(out[0], d[0])
    assert float(out[1].norm()) == torch.tensor(0.5).item() and float(out[1, 1, 2, 2]) == 0.5


def test_stays_in_the_ball_and_uses_it(brisque, batch):
    x = batch[:, :, :64, :64]
    for r in (0.25, 1.0):
        steps, out = run_all(PGDL2(radius=r, iters=4).run(x, brisque, generator=torch.Generator().manual_seed(0)))
        norms = (out.image - x).flatten(1).norm(dim=1)
        assert bool((norms <= r + 1e-5).all()) and bool((norms > 0.5 * r).all())
        assert all(s.l2 <= r + 1e-5 for s in steps)  # every iterate, the random start included
        assert float(out.image.min()) >= 0 and float(out.image.max()) <= 1
        assert int(improved(brisque, x, out.image).sum()) >= 3


def test_random_start_is_inside_the_ball_and_seeded():
    x = torch.rand(3, 3, 16, 16)
    atk = PGDL2(radius=0.5)
    a = atk.init_delta(x, torch.Generator().manual_seed(1))
    b = atk.init_delta(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert bool((a.flatten(1).norm(dim=1) <= 0.5 + 1e-6).all())
    assert not torch.equal(a, atk.init_delta(x, torch.Generator().manual_seed(2)))
    assert torch.equal(PGDL2(random_start=False).init_delta(x, None), torch.zeros_like(x))


def test_registered_with_radius_presets():
    cls = ATTACKS.get("pgd-l2")
    assert cls is PGDL2
    assert [cls.from_preset(f"radius={r}").params.radius for r in (0.25, 0.5, 1.0, 2.0)] == [0.25, 0.5, 1.0, 2.0]
