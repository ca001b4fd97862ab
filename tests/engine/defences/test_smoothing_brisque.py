"""Certified smoothing of the real BRISQUE on real photos, against PGD in an L2 ball.

The attack (written here; PGD-L2 with EOT over the defence's draws) pushes the smoothed
score both ways within ‖δ‖₂ ≤ r; the smoothed score of the attacked image must stay in
the clean image's certified interval on every image (fixed seeds, confidence 1 − α).
Far outside r (‖δ‖₂ ≈ 20 ≫ r) the same attack breaks the interval, and the row says so.
"""
from __future__ import annotations

import pytest
import torch

from engine.defences import DEFENCES
from engine.evaluation.certified import certified_columns, percentile_certificate
from tests.conftest import photo_tensor

NAMES = ("astronaut", "coffee", "chelsea")
SIZE = 64
SEED = 11
SMOOTHING = dict(sigma=0.25, n=48, alpha=0.01, batch=48)


def pgd_l2(metric, defence, x: torch.Tensor, radius: float, sign: float, steps: int = 5, draws: int = 2,
           ) -> torch.Tensor:
    """PGD in the L2 ball of ``radius`` on the noisy metric ``M(D(x + δ))`` averaged over
    ``draws`` seeded draws (EOT; draw 0 of seed SEED is the certificate's first sample).
    ``sign`` −1 lowers the score, +1 raises it. Returns x + δ with ‖δ‖₂ ≤ radius, in [0, 1]."""
    delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        xa = x + delta
        loss = sum(metric.score(defence(xa, seed=SEED + k), grad=True).sum() for k in range(draws))
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = delta + sign * 2.5 * radius / steps * grad / (grad.norm() + 1e-12)
            delta = delta * torch.clamp(radius / (delta.norm() + 1e-12), max=1.0)
            delta = (x + delta).clamp(0, 1) - x  # clipping to the image range only shrinks δ
    return (x + delta).detach()


@pytest.fixture(scope="module")
def images():
    return {n: photo_tensor(n, (SIZE, SIZE)) for n in NAMES}


def test_pgd_within_r_stays_inside_the_clean_interval(brisque, images):
    radius = 0.1
    # same σ and seed → the same draws: one PGD serves both smoothings
    defences = [DEFENCES.get("median-smoothing")(radius=radius, **SMOOTHING),
                DEFENCES.get("randomized-smoothing")(radius=radius, bound="bernstein", **SMOOTHING)]
    for img, x in images.items():
        clean = [d.certify(brisque, x, SEED) for d in defences]
        assert float(clean[0].high - clean[0].low) < brisque.range / 4, (img, "a trivial interval proves nothing")
        for sign in (-1.0, 1.0):
            xa = pgd_l2(brisque, defences[0], x, radius, sign)
            for d, c in zip(defences, clean):
                row = certified_columns(c, d.certify(brisque, xa, SEED), x, xa, brisque.range)
                assert row["perturbation_l2"] <= radius * (1 + 1e-5) and row["certified_applies"]
                assert row["certified_holds"], (img, d.name, sign, row)


def test_interval_widens_as_r_grows(brisque, images):
    d = DEFENCES.get("median-smoothing")(**SMOOTHING)
    for img, x in images.items():
        samples = d.sample_scores(brisque, x, SEED)
        widths = [float((c.high - c.low)[0]) for c in
                  (percentile_certificate(samples, brisque.bounds, 0.25, r, 0.01) for r in (0.0, 0.05, 0.1, 0.2))]
        assert widths == sorted(widths) and widths[-1] > 1.5 * widths[0], (img, widths)


def test_far_outside_r_breaks_and_the_row_says_so(brisque, images):
    radius = 0.1
    d = DEFENCES.get("median-smoothing")(radius=radius, **SMOOTHING)
    broken = 0
    for x in images.values():
        clean = d.certify(brisque, x, SEED)
        xa = pgd_l2(brisque, d, x, 25.0, -1.0, steps=6, draws=2)
        attacked = d.certify(brisque, xa, SEED)
        row = certified_columns(clean, attacked, x, xa, brisque.range)
        assert row["perturbation_l2"] > 50 * radius and not row["certified_applies"]
        if not row["certified_holds"]:
            broken += 1
            assert "outside the certified radius" in row["certified_note"]
            assert float(attacked.score[0]) < row["defended-clear_certified_low"]  # lowered: BRISQUE "better"
    assert broken == len(images)
