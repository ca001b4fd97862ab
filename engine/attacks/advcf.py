"""AdvCF: adversarial colour filter (a per-channel piecewise-linear colour curve).

Z. Zhao, Z. Liu, M. Larson, "Adversarial Image Color Transformations in Explicit Color
Filter Space" (AdvCF), IEEE TIFS 2023; it extends their ACE attack ("Adversarial Color
Enhancement: Generating Unrestricted Adversarial Images by Optimizing a Color Filter",
BMVC 2020). Used on quality metrics as in MSU's benchmark.

The optimised variables are the curve, not the pixels: for each image and channel, K = 64
non-negative piece heights P (init 1/64, i.e. the identity curve) define
``F(v) = (Σ_{j<k} P_j + (K·v − k)·P_k) / ΣP`` with ``k = ⌊K·v⌋``. Adam (lr 0.001)
minimises the MSU loss plus the regulariser ``0.5·Σ(P/ΣP − 1/K)²``; the output is
quantised to 1/255 (straight-through in the loop, so the metric always sees the image
that will be saved). MSU runs 1–20 iterations; we default to 10, the middle of that
range and the common budget of the other attacks.

MSU's adv-cf code is not in adversarial-defenses-for-iqa or the robustness benchmark (only
its iteration presets are), so this attack is not checked against MSU's code and has no
literal preset.

Constrains: the output is a monotone non-decreasing curve of the input, per channel
(P ≥ 0 is kept by clamping after each step), mapping [0, 1] onto [0, 1]; on 1/255 levels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun, IterateTracker
from engine.metrics.base import Metric, attack_loss, check_image_batch
from engine.spec.params import param

_MIN_PIECE = 1e-6  # keeps ΣP > 0 so the curve stays defined


def apply_color_curve(x: torch.Tensor, pieces: torch.Tensor) -> torch.Tensor:
    """Map each channel of ``x`` through its piecewise-linear curve.

    Args:
        x: :math:`(B, C, H, W)` in [0, 1].
        pieces: :math:`(B, C, K)` non-negative piece heights (normalised by their sum).

    Returns:
        :math:`(B, C, H, W)` in [0, 1]; differentiable w.r.t. ``pieces`` and ``x``.

    Example:
        >>> x = torch.rand(1, 3, 8, 8)
        >>> torch.allclose(apply_color_curve(x, torch.full((1, 3, 64), 1 / 64)), x, atol=1e-6)
        True
    """
    if x.dim() != 4 or pieces.dim() != 3 or pieces.shape[:2] != x.shape[:2]:
        raise ValueError(f"apply_color_curve: x {tuple(x.shape)} and pieces {tuple(pieces.shape)} "
                         "must be (B, C, H, W) and (B, C, K)")
    b, c, h, w = x.shape
    k_total = pieces.shape[-1]
    norm = pieces / pieces.sum(dim=-1, keepdim=True)
    starts = torch.cumsum(norm, dim=-1) - norm  # value of the curve where each piece begins
    t = x.clamp(0.0, 1.0).reshape(b, c, h * w) * k_total
    k = t.detach().floor().clamp(max=k_total - 1).long()
    frac = t - k
    y = torch.gather(starts, 2, k) + frac * torch.gather(norm, 2, k)
    return y.reshape(b, c, h, w).clamp(0.0, 1.0)


def quantise_straight_through(x: torch.Tensor, levels: int = 255) -> torch.Tensor:
    """Round to multiples of 1/levels in the forward pass, identity in the backward pass."""
    return x + (torch.round(x * levels) / levels - x).detach()


class _QuantisedCurve(torch.autograd.Function):
    """The attack's hot path: curve + 1/255 quantisation (straight-through) for a fixed
    input, whose piece index ``k`` and in-piece position ``frac`` are computed once.

    Same values and gradients as ``quantise_straight_through(apply_color_curve(x, P))``
    w.r.t. P, with a hand-written backward (two scatter-adds instead of autograd's
    graph), about 2× faster at 512×384.
    """

    @staticmethod
    def forward(ctx, pieces: torch.Tensor, k: torch.Tensor, frac: torch.Tensor, levels: float) -> torch.Tensor:
        total = pieces.sum(dim=-1, keepdim=True)
        norm = pieces / total
        starts = torch.cumsum(norm, dim=-1) - norm
        y = torch.gather(starts, 2, k).addcmul_(frac, torch.gather(norm, 2, k))
        ctx.save_for_backward(norm, total, k, frac)
        return y.clamp_(0.0, 1.0).mul_(levels).round_().div_(levels)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        norm, total, k, frac = ctx.saved_tensors
        # dy/dnorm_j = frac where k == j, 1 where k > j (piece j lies below the pixel)
        count = torch.zeros_like(norm).scatter_add_(2, k, g)
        inside = torch.zeros_like(norm).scatter_add_(2, k, g * frac)
        above = count.flip(-1).cumsum(-1).flip(-1) - count
        g_norm = inside + above
        g_pieces = (g_norm - (g_norm * norm).sum(dim=-1, keepdim=True)) / total
        return g_pieces, None, None, None


class QuantisedCurve:
    """``P ↦ round(255·F_P(x))/255`` for one fixed batch ``x`` (straight-through gradient).

    When every pixel of ``x`` is on the 1/255 grid (8-bit images) the curve is evaluated on
    the 256 levels only and looked up per pixel (one gather forward, one scatter-add
    backward); otherwise :class:`_QuantisedCurve` evaluates it per pixel. Both give the
    values of ``quantise_straight_through(apply_color_curve(x, P))``.

    Args:
        x: :math:`(B, C, H, W)` in [0, 1].
        pieces: K, the number of pieces.
    """

    def __init__(self, x: torch.Tensor, pieces: int, levels: int = 255) -> None:
        b, c, h, w = x.shape
        flat = x.detach().clamp(0.0, 1.0).reshape(b, c, h * w)
        self.shape = x.shape
        self.levels = float(levels)
        q = torch.round(flat * levels)
        self.on_grid = bool(((flat * levels - q).abs() <= 1e-4).all())
        if self.on_grid:
            self.index = q.long()
            grid = torch.arange(levels + 1, device=x.device, dtype=x.dtype) / levels
            self.grid = grid.view(1, 1, 1, -1).expand(b, c, 1, levels + 1)
        else:
            t = flat * pieces
            self.k = t.floor().clamp(max=pieces - 1).long()
            self.frac = t - self.k

    def __call__(self, pieces: torch.Tensor) -> torch.Tensor:
        if self.on_grid:
            table = quantise_straight_through(apply_color_curve(self.grid, pieces), int(self.levels))
            return torch.gather(table.flatten(2), 2, self.index).reshape(self.shape)
        return _QuantisedCurve.apply(pieces, self.k, self.frac, self.levels).reshape(self.shape)


def curve_regulariser(pieces: torch.Tensor) -> torch.Tensor:
    """Per-image ``0.5·Σ(P/ΣP − 1/K)²`` over channels and pieces, :math:`(B,)`."""
    k_total = pieces.shape[-1]
    norm = pieces / pieces.sum(dim=-1, keepdim=True)
    return 0.5 * (norm - 1.0 / k_total).pow(2).sum(dim=(1, 2))


@dataclass
class AdvCFParams(AttackParams):
    lr: float = param(0.001, min=0.0, max=1.0, help="Adam learning rate on the curve pieces", step=0.0005)
    iters: int = param(10, min=1, max=10000, help="number of Adam steps (MSU: 1–20)")
    pieces: int = param(64, min=2, max=1024, help="pieces of the colour curve per channel")
    reg: float = param(0.5, min=0.0, max=1000.0, help="weight of the uniform-pieces regulariser")


@ATTACKS.register("advcf")
class AdvCF(Attack):
    """Optimise a per-channel monotone colour curve to raise the metric.

    Example:
        >>> out = AdvCF(iters=5)(x, metric)
    """

    Params = AdvCFParams
    strength_param = "lr"
    presets = {"msu-default": {}, "iters=1": {"iters": 1}, "iters=5": {"iters": 5},
               "iters=20": {"iters": 20}, "strong": {"lr": 0.005, "iters": 20}}

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        p = self.params
        check_image_batch(x)
        x0 = x.detach()
        tracker = IterateTracker(metric, x0)
        pieces = torch.full((x0.shape[0], 3, p.pieces), 1.0 / p.pieces, device=x0.device,
                            dtype=x0.dtype, requires_grad=True)
        opt = torch.optim.Adam([pieces], lr=p.lr)
        curve = QuantisedCurve(x0, p.pieces)
        for i in range(p.iters):
            xi = curve(pieces)
            scores = metric.score(xi, grad=True)
            loss = attack_loss(metric, scores) + p.reg * curve_regulariser(pieces)
            (grad,) = torch.autograd.grad(loss.sum(), pieces)
            yield tracker.record(i, xi, scores.detach(), loss.detach())
            pieces.grad = grad
            opt.step()
            with torch.no_grad():
                pieces.clamp_(min=_MIN_PIECE)
        with torch.no_grad():
            x_adv = curve(pieces)
            scores = metric.score(x_adv)
            loss = attack_loss(metric, scores) + p.reg * curve_regulariser(pieces)
        yield tracker.record(p.iters, x_adv, scores, loss)
        return tracker.outcome(x_adv, p.iters, p.keep_best)
