"""Feature smoothing (FS-IQA; Shumitskaya, Vatolin, Antsiferova, arXiv 2508.05516, 2025):
randomized smoothing in the feature space of a learned metric, certified at a pixel radius.

The metric is split into a backbone φ (image → features) and a head h (features →
score). The smoothed score is ``g(x) = E h̃(φ(x) + ε)``, ε ~ N(0, σ² I) over the feature
vector, h̃ the head's score clipped to the metric's bounds and normalised to [0, 1]. The
backbone runs once per image; the n noisy samples only run the head (cheap).

Certificate. ``Φ⁻¹(g)`` is 1/σ-Lipschitz in the features (the mean-smoothing lemma of
``engine/evaluation/certified.py``, applied to h̃), so a feature change of L2 norm ≤ r_f
keeps g within ``[Φ(Φ⁻¹(g_low) − r_f/σ), Φ(Φ⁻¹(g_high) + r_f/σ)]``. A pixel perturbation
‖δ‖₂ ≤ r changes the features by at most ``L·r`` with L the Lipschitz constant of φ on the
ball; the paper takes L = σ_max(J_φ(x)), the largest singular value of the backbone's
Jacobian at x, estimated by power iteration on JᵀJ (Jacobian–vector products by double
backward, vector–Jacobian products by backward). So r_f = σ̂_max · r.

Honest limits: σ_max(J(x)) is the exact Lipschitz constant only for a linear backbone;
for a nonlinear one it is a first-order (local) value, and power iteration approaches
σ_max from below, so the interval is a certificate at confidence 1 − α only when
``lipschitz`` is set to a true Lipschitz bound of φ (or φ is linear); otherwise it is the
paper's first-order certificate. The row's ``certified_radius`` is the pixel radius r.

Constrains: nothing in the image (the image is not changed; as an image defence it is the
identity). Needs a learned metric whose head is a module: ``head="auto"`` takes the
metric's known head (MetaIQA: the regression MLP after the ResNet-18; LinearityIQA: the
final regression over the pooled features) or a top-level module named head/regressor/fc
of its network; any other module can be named by its dotted path. The split is checked on
every call: the head applied to the captured features must reproduce the metric's own
score, or a clear error says so.

Draws: the feature noise ε_k (one draw of the feature shape per k, in order, on a CPU
generator seeded with the item's seed, the same for every image of a batch), the power
iteration's start from ``derive_seed(seed, "power-iteration")``: the clean and the attacked
image of an item get the same draws.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.defences._smoothing import MeanSmoothingParams, SmoothingDefence
from engine.defences.base import DEFENCES, DefenceError
from engine.evaluation.certified import Certificate, mean_certificate
from engine.core.seeds import derive_seed
from engine.metrics.base import check_image_batch
from engine.spec.params import param

#: metric name → dotted path of its head (the module whose input are the backbone's features)
KNOWN_HEADS = {"metaiqa": "net.head", "linearity": "net.regression"}
#: top-level names of a network's head tried by ``head="auto"`` for other metrics
HEAD_NAMES = ("head", "regressor", "regression", "fc")


@dataclass
class FeatureSmoothingParams(MeanSmoothingParams):
    sigma: float = param(0.25, min=1e-4, max=100.0, step=0.01, help="feature noise σ (units of the head's input)")
    radius: float = param(0.25, min=0.0, max=1000.0, step=0.05,
                          help="pixel L2 radius r the interval is certified for (images in [0, 1])")
    head: str = param("auto", help="dotted path of the metric's head module; auto = the metric's known head")
    power_iters: int = param(20, min=1, max=10000, help="power iterations for the Jacobian's largest singular value")
    lipschitz: float = param(0.0, min=0.0, max=1e9,
                             help="a known Lipschitz bound of the backbone (L2→L2); 0 = estimate σ_max(J) at x")


@dataclass
class FeatureCertificate(Certificate):
    """A :class:`Certificate` with the feature-space quantities behind it.

    Attributes:
        lipschitz: the backbone's Lipschitz value used, per image :math:`(B,)`.
        feature_radius: r_f = lipschitz · radius, per image :math:`(B,)`.
    """

    lipschitz: torch.Tensor | None = None
    feature_radius: torch.Tensor | None = None


class _Captured(Exception):
    """Raised by the head's pre-hook to stop the metric's forward at the features."""

    def __init__(self, features: torch.Tensor) -> None:
        super().__init__("features captured")
        self.features = features


def find_head(metric: Any, path: str = "auto") -> nn.Module:
    """The head module of ``metric`` (see the module docstring for ``auto``).

    Raises:
        DefenceError: the metric has no such module (e.g. a classical metric).
    """
    name = getattr(metric, "name", type(metric).__name__)
    if path == "auto":
        path = KNOWN_HEADS.get(name, "")
        if not path:
            net = getattr(metric, "net", metric)
            prefix = "net." if net is not metric else ""
            path = next((prefix + n for n in HEAD_NAMES if isinstance(getattr(net, n, None), nn.Module)), "")
        if not path:
            raise DefenceError(f"feature-smoothing: metric {name!r} has no known backbone/head split "
                               "(classical metrics have no features); name its head module with head=<dotted path>")
    try:
        module = metric.get_submodule(path)
    except (AttributeError, TypeError) as exc:
        raise DefenceError(f"feature-smoothing: metric {name!r} has no module {path!r}") from exc
    return module


def backbone_features(metric: Any, head: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """φ(x): the input of ``head`` when the metric scores ``x`` (the head itself is not run).

    Builds the autograd graph when grad mode is on. Shape: :math:`(B, ...)`.
    """
    def hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
        raise _Captured(args[0])

    handle = head.register_forward_pre_hook(hook)
    try:
        metric.forward(x.to(metric.device))
    except _Captured as cap:
        return cap.features
    finally:
        handle.remove()
    raise DefenceError(f"feature-smoothing: the head module was never called when {metric.name} scored an image")


def head_scores(head: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """One score per row of ``features`` :math:`(K, ...)` → :math:`(K,)`."""
    out = head(features)
    if isinstance(out, (tuple, list)):
        out = out[0]
    out = out.reshape(features.shape[0], -1)
    if out.shape[1] != 1:
        raise DefenceError(f"feature-smoothing: the head gives {out.shape[1]} values per image, not one score")
    return out[:, 0].float()


def top_singular_value(fn: Any, x: torch.Tensor, iters: int, generator: torch.Generator) -> torch.Tensor:
    """Largest singular value of the Jacobian of ``fn`` at each image of ``x``, by power
    iteration on JᵀJ (J v by double backward, Jᵀ w by backward). Images must not interact
    in ``fn`` (the Jacobian is then block-diagonal and each block converges on its own).

    Args:
        fn: :math:`(B, ...) → (B, ...)`, differentiable.
        x: the point :math:`(B, 3, H, W)`.
        iters: power iterations.
        generator: draws the start vector (CPU).

    Returns:
        :math:`(B,)`: ‖J v‖ for the last unit vector v (≤ σ_max, increasing to it).
    """
    b = x.shape[0]
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = fn(x)
        w = torch.zeros_like(y, requires_grad=True)
        jt_w = torch.autograd.grad(y, x, w, create_graph=True)[0]  # Jᵀw, linear in w
        v = torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype)

        def unit(t: torch.Tensor) -> torch.Tensor:
            n = t.flatten(1).norm(dim=1).clamp_min(1e-30)
            return t / n.view(b, *([1] * (t.dim() - 1)))

        v = unit(v)
        sigma = torch.zeros(b, device=x.device)
        for _ in range(iters):
            jv = torch.autograd.grad(jt_w, w, v, retain_graph=True)[0]  # J v
            sigma = jv.flatten(1).norm(dim=1)
            u = torch.autograd.grad(y, x, jv.detach(), retain_graph=True)[0]  # Jᵀ J v
            if not bool((u.flatten(1).norm(dim=1) > 0).all()):
                break  # a zero Jacobian block: σ = 0 there
            v = unit(u.detach())
        jv = torch.autograd.grad(jt_w, w, v, retain_graph=False)[0]
        return torch.maximum(jv.flatten(1).norm(dim=1), sigma).detach()


@DEFENCES.register("feature-smoothing")
class FeatureSmoothing(SmoothingDefence):
    """Mean smoothing of a learned metric's head over Gaussian noise on its backbone's
    features, certified at a pixel L2 radius through σ_max of the backbone's Jacobian.

    Example:
        >>> fs = FeatureSmoothing(sigma=0.25, n=100, radius=0.05)
        >>> c = fs.certify(metric, x, seed=3)   # c.score, c.low, c.high, c.feature_radius: (B,)
    """

    Params = FeatureSmoothingParams
    aggregate = "mean"

    def __call__(self, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """The image is not changed (the noise lives in the metric's features)."""
        check_image_batch(x)
        return x.clamp(0.0, 1.0)

    def lipschitz_at(self, metric: Any, x: torch.Tensor, seed: int) -> torch.Tensor:
        """The backbone's Lipschitz value used for ``x``: ``lipschitz`` if set, else the
        power-iteration estimate of σ_max(J_φ(x)). Shape :math:`(B,)`."""
        p = self.params
        if p.lipschitz > 0:
            return torch.full((x.shape[0],), float(p.lipschitz))
        head = find_head(metric, p.head)
        gen = torch.Generator().manual_seed(derive_seed(int(seed), "power-iteration"))
        return top_singular_value(lambda z: backbone_features(metric, head, z), x, p.power_iters, gen).cpu()

    @torch.no_grad()
    def feature_samples(self, metric: Any, x: torch.Tensor, seed: int) -> torch.Tensor:
        """The n head scores ``h(φ(x) + σ ε_k)``, :math:`(n, B)`, metric units, on the CPU.

        Raises:
            DefenceError: the head does not reproduce the metric's score of ``x``.
        """
        check_image_batch(x)
        p = self.params
        head = find_head(metric, p.head)
        feats = backbone_features(metric, head, x).detach()
        own = metric.score(x)
        plain = head_scores(head, feats)
        if not torch.allclose(plain.cpu(), own.float().cpu(), rtol=1e-4, atol=1e-5 * metric.range):
            raise DefenceError(f"feature-smoothing: the head of {metric.name} does not reproduce its score "
                               f"({float(plain[0]):.6g} vs {float(own[0]):.6g}); name the head with head=...")
        gen = torch.Generator().manual_seed(int(seed))
        b = x.shape[0]
        chunk = max(1, p.batch // b)
        out = []
        for first in range(0, p.n, chunk):
            k = min(chunk, p.n - first)
            eps = torch.randn((k, *feats.shape[1:]), generator=gen).to(device=feats.device, dtype=feats.dtype)
            z = (feats.unsqueeze(0) + p.sigma * eps.unsqueeze(1)).flatten(0, 1)  # k·B, ...
            out.append(head_scores(head, z).cpu().reshape(k, b))
        return torch.cat(out)

    def sample_scores(self, metric: Any, x: torch.Tensor, seed: int) -> torch.Tensor:
        return self.feature_samples(metric, x, seed)

    def certify(self, metric: Any, x: torch.Tensor, seed: int) -> FeatureCertificate:
        """The smoothed score of ``x`` and its interval for pixel perturbations ‖δ‖₂ ≤ radius.

        Args:
            metric: a learned ``engine.metrics.base.Metric`` with a head module.
            x: :math:`(B, 3, H, W)` in [0, 1].
            seed: the item's defence seed (the same for the clean and the attacked image).
        """
        p = self.params
        scores = self.feature_samples(metric, x, seed)
        lip = self.lipschitz_at(metric, x, seed)
        r_f = lip.double() * p.radius
        parts = [mean_certificate(scores[:, i:i + 1], metric.bounds, p.sigma, float(r_f[i]), p.alpha, p.bound)
                 for i in range(x.shape[0])]
        return FeatureCertificate(torch.cat([c.score for c in parts]), torch.cat([c.low for c in parts]),
                                  torch.cat([c.high for c in parts]), float(p.radius),
                                  torch.cat([c.samples for c in parts], dim=1), lip.float(), r_f.float())
