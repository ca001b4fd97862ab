"""cAdv: a colourisation attack (Bhattad, Chong, Liang, Li, Forsyth, "Unrestricted
Adversarial Examples via Semantic Manipulation", ICLR 2020), as MSU's defence benchmark
runs it (``adversarial-defenses-for-iqa``, ``metrics/methods/cadv/run.py``), re-derived.

No pixel is perturbed directly: a colourisation network
(:class:`engine.attacks._colorization.ColorNet`) re-colours the image from its own
luminance L plus a sparse map of colour hints, and the hints (and the mask saying where
they are) are optimised so that the metric improves:

1. the image goes to normalised CIE Lab; L is kept for good;
2. hints (:func:`~engine.attacks._colorization.choose_hints`): the ab channels are
   blurred (σ = 3 px) and clustered by k-means (8 clusters); the network's colour
   distribution without hints gives an entropy per pixel; from the 4 clusters of lowest
   mean entropy, 50 pixels are drawn at random and carry their true ab as hints
   (mask 0.5 there, −0.5 elsewhere);
3. ``iters`` Adam steps (lr 5·10⁻⁴) on the whole hint map and mask (clamped to [−1, 1]
   and [−0.5, 0.5] when fed) minimise the MSU loss ``1 − sign·M(x)/range`` of the
   re-coloured image ``lab→rgb(L, net(L, hints, mask))`` clamped to [0, 1].

Constrains: the luminance — the output has the input's L wherever its colour is inside
the sRGB gamut (the final clamp to [0, 1] changes L only for out-of-gamut colours); the
colours are whatever the network makes of the hints (no L∞ bound: an unrestricted
attack). Images are padded (replicate) to a multiple of 8 for the network and cropped back.

Weights: MSU's ``cadv-colorization-model.pth`` (the user-guided colourisation network of
Zhang et al. 2017), looked up in the weights folder and downloaded when missing (no
network: the usual message naming file, URL and folder, exit code 6); ``weights=PATH``
names another state dict; ``weights=random`` builds the network untrained (seed 0), for
tests and demonstrations only.

Differences from MSU's code: MSU blurs the (2, H, W) ab array with a Gaussian over all
three axes (mixing a and b); we blur each channel spatially. MSU crops the image to a
multiple of 4 and leaves the border strip unattacked; we pad to a multiple of 8 (what the
network's three halvings need) and re-colour every pixel. MSU's comment says the
highest-entropy clusters are chosen, its code takes the lowest (our default,
``prefer="low"``; ``"high"`` takes the others). The hint sampling and k-means start are
drawn from the attack's generator, so a seed gives the same result.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from engine.attacks._colorization import MULTIPLE, WEIGHTS_FILE, WEIGHTS_URL, choose_hints, lab_to_rgb, \
    load_colorization, rgb_to_lab
from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun, Generators, IterateTracker
from engine.metrics.base import Availability, Metric, attack_loss, check_image_batch
from engine.spec.params import param


@dataclass
class CAdvParams(AttackParams):
    iters: int = param(10, min=1, max=10000, help="Adam steps on the hints")
    lr: float = param(5e-4, min=0.0, max=1.0, help="Adam learning rate on the hint map and mask", step=1e-4)
    hints: int = param(50, min=1, max=100000, help="hint pixels")
    clusters: int = param(8, min=1, max=64, help="k-means clusters of the blurred ab colours")
    chosen: int = param(4, min=1, max=64, help="clusters the hints are drawn from")
    blur: float = param(3.0, min=0.0, max=50.0, help="σ (pixels) of the blur before clustering")
    prefer: str = param("low", choices=("low", "high"),
                        help="draw hints from the clusters of lowest (MSU's code) or highest colour entropy")
    weights: str = param("", help="colourisation state dict: empty = MSU's file (downloaded when missing), "
                                  "a path, or 'random' (untrained; tests only)")


def _pad(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % MULTIPLE, (-w) % MULTIPLE
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def _generators(generator: Generators, n: int) -> list[torch.Generator]:
    if generator is None:
        return [torch.Generator().manual_seed(0)] * n
    if isinstance(generator, torch.Generator):
        return [generator] * n
    if len(generator) != n:
        raise ValueError(f"{len(generator)} generators for a batch of {n} images")
    return list(generator)


@ATTACKS.register("cadv")
class CAdv(Attack):
    """Colourisation attack: optimise colour hints of a colourisation network.

    Example:
        >>> out = CAdv(weights="random", iters=2)(x, metric)  # doctest: +SKIP
    """

    Params = CAdvParams
    strength_param = "lr"
    presets = {"msu-default": {}}

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self._nets: dict[str, Any] = {}

    @classmethod
    def availability(cls, params: dict[str, Any] | None = None) -> Availability:
        """Ready when the colourisation weights are here (or ``weights=random``)."""
        from pathlib import Path

        from engine.metrics.weights import weights_dir

        w = str((params or {}).get("weights", "") or "")
        if w == "random":
            return Availability("ready")
        if w:
            return Availability("ready") if Path(w).expanduser().is_file() else Availability(
                "unavailable", f"colourisation weights {w!r} not found")
        if (weights_dir() / WEIGHTS_FILE).is_file():
            return Availability("ready")
        return Availability("needs-download", f"colourisation weights {WEIGHTS_FILE!r} are not in {weights_dir()}; "
                                              f"they download from {WEIGHTS_URL} on first use")

    def network(self, device: torch.device):
        key = str(device)
        if key not in self._nets:
            net = load_colorization(self.params.weights, device)
            for p in net.parameters():
                p.requires_grad_(False)
            self._nets[key] = net
        return self._nets[key]

    def recolour(self, net, L: torch.Tensor, hints: torch.Tensor, mask: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        """The re-coloured image, clamped to [0, 1] and cropped to ``size`` (H, W)."""
        _, ab = net(L, hints.clamp(-1, 1), mask.clamp(-0.5, 0.5))
        return lab_to_rgb(torch.cat((L, ab), dim=1)).clamp(0, 1)[..., : size[0], : size[1]]

    def run(self, x: torch.Tensor, metric: Metric, *, generator: Generators = None) -> AttackRun:
        check_image_batch(x)
        p = self.params
        x0 = x.detach()
        size = x0.shape[-2:]
        net = self.network(x0.device)
        lab = rgb_to_lab(_pad(x0))
        L = lab[:, :1]
        gens = _generators(generator, x0.shape[0])
        picked = [choose_hints(net, lab[i:i + 1], gens[i], hints=p.hints, clusters=p.clusters, chosen=p.chosen,
                               blur=p.blur, prefer=p.prefer) for i in range(x0.shape[0])]
        hints = torch.cat([h for h, _ in picked]).requires_grad_(True)
        mask = torch.cat([m for _, m in picked]).requires_grad_(True)
        opt = torch.optim.Adam([hints, mask], lr=p.lr, betas=(0.9, 0.999))
        tracker = IterateTracker(metric, x0)
        for i in range(p.iters):
            with torch.enable_grad():
                xi = self.recolour(net, L, hints, mask, size)
                scores = metric.score(xi, grad=True)
                loss = attack_loss(metric, scores)
                opt.zero_grad()
                loss.sum().backward()
            yield tracker.record(i, xi.detach(), scores.detach(), loss.detach())
            opt.step()
        with torch.no_grad():
            x_adv = self.recolour(net, L, hints, mask, size)
        yield tracker.record(p.iters, x_adv, metric.score(x_adv))
        return tracker.outcome(x_adv, p.iters, p.keep_best)
