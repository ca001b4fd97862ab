"""CNN attack: a generator network, trained over a folder, outputs a perturbation for each
image (MSU's ``cnn-attack``, ``adversarial-defenses-for-iqa`` ``metrics/methods/cnn-attack``;
the image-conditioned generator of Poursaeed et al., "Generative Adversarial
Perturbations", CVPR 2018).

A small U-Net G maps the image itself to ``δ(x) = ε·tanh(G(x))``, so ``|δ| ≤ ε`` for any
weights; the attacked image is ``clamp(x + δ(x), 0, 1)``. :func:`train_cnn_attack` trains
G with Adam on the mean MSU loss of mini-batches of a folder (``train-uap --method cnn``),
and :func:`save_cnn_attack` keeps its weights, architecture and ε with a manifest in a
small ``.pt`` file that the ``cnn-attack`` attack loads (``perturbation=<file>``), like a
UAP file. Applying it costs one generator forward per image (no per-image optimisation).

Constrains: L∞ ≤ ε (the smaller of the attack's ``eps`` and the file's ε), image in [0, 1].

Defaults follow MSU's training code: ε = 10/255, Adam lr 1e-3, 5 epochs, batches of 8,
256×256 training images, ``res.data.clamp_`` (a straight-through clamp: saturated pixels
keep their gradient), NaN gradients zeroed. Differences, not reproduced:

* MSU's G is an 8-level U-Net (64 base channels, instance norm, dropout 0.5 in the three
  innermost decoder levels) that needs 256×256 inputs; ours has ``levels`` (3) levels of
  ``width`` (16) base channels, small enough to train on a CPU, and takes any size
  (reflect-padded to a multiple of 2^levels, cropped back);
* MSU's batches are ``next(iter(loader))`` of a shuffled loader, i.e. drawn afresh each
  step (with replacement across steps); ours visit the folder in a seeded order per epoch;
* MSU's loss is ``1 − mean(M)/range`` whatever the metric's direction; we keep the sign.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun, IterateTracker, straight_through_clamp
from engine.attacks.sign_gradient import linf_presets
from engine.attacks.uap import UAPTraining, train_epochs
from engine.metrics.base import Metric, attack_loss, check_image_batch
from engine.spec.params import param

CNN_FORMAT = "cnn-attack-v1"


class PerturbationUNet(nn.Module):
    """Image → unbounded perturbation map (``tanh`` and ε applied by :meth:`delta`).

    Args:
        width: channels of the first level (doubled per level).
        levels: down-sampling levels (stride-2 convolutions), each with a skip connection.

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1], any H, W.
        - Output: :math:`(B, 3, H, W)`.
    """

    def __init__(self, width: int = 16, levels: int = 3) -> None:
        super().__init__()
        self.levels = levels
        chans = [width * 2 ** i for i in range(levels + 1)]
        self.stem = nn.Sequential(nn.Conv2d(3, chans[0], 3, padding=1), nn.LeakyReLU(0.2))
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1), nn.InstanceNorm2d(chans[i + 1]),
                          nn.LeakyReLU(0.2)) for i in range(levels))
        self.up = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(chans[i + 1] * (1 if i == levels - 1 else 2), chans[i], 4, 2, 1),
                          nn.InstanceNorm2d(chans[i]), nn.ReLU()) for i in range(levels))
        self.out = nn.Conv2d(2 * chans[0], 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2 ** self.levels
        ph, pw = (-h) % m, (-w) % m
        z = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        skips = [self.stem(z)]
        for layer in self.down:
            skips.append(layer(skips[-1]))
        y = skips.pop()
        for i in reversed(range(self.levels)):
            y = self.up[i](y)
            y = torch.cat([y, skips.pop()], dim=1)
        return self.out(y)[..., :h, :w]

    def delta(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        """δ(x) = ε·tanh(G(x)), so ``|δ| ≤ ε`` whatever the weights."""
        return eps * torch.tanh(self(x))


def train_cnn_attack(
    images: Iterable[torch.Tensor] | str | os.PathLike,
    metric: Metric,
    eps: float = 10 / 255,
    epochs: int = 5,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    *,
    size: int = 256,
    width: int = 16,
    levels: int = 3,
    device: torch.device | str | None = None,
) -> UAPTraining:
    """Train a generator whose per-image perturbation raises ``metric``.

    Args:
        images: a folder (searched recursively) or :math:`(3, H, W)`/:math:`(B, 3, H, W)` tensors.
        metric: the metric to raise.
        eps: L∞ bound of δ.
        epochs: passes over the images.
        batch_size: images per Adam step.
        lr: Adam's learning rate.
        seed: seeds G's initial weights and the image order.
        size: side of the training images (resized).
        width, levels: G's architecture.
        device: where to train (default: the metric's device).

    Yields:
        :class:`~engine.attacks.uap.UAPTrainStep` after every batch.

    Returns:
        the trained :class:`TrainedCNN` (on the CPU, eval mode).
    """
    dev = torch.device(device) if device is not None else metric.device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = PerturbationUNet(width, levels).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)

    def update(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        res = straight_through_clamp(batch + net.delta(batch, eps))
        scores = metric.score(res, grad=True)
        losses = attack_loss(metric, scores)
        opt.zero_grad()
        losses.mean().backward()
        for p in net.parameters():
            if p.grad is not None:
                p.grad = torch.nan_to_num(p.grad, nan=0.0, posinf=0.0, neginf=0.0)
        opt.step()
        return scores.detach(), losses.detach()

    net.train()
    yield from train_epochs(images, update, epochs=epochs, batch_size=batch_size, seed=seed, size=size,
                            device=dev)
    net.eval().requires_grad_(False)
    return TrainedCNN(net.cpu(), eps)


@dataclass
class TrainedCNN:
    """A trained generator and the ε it was trained for (what ``train-uap --method cnn`` saves)."""

    net: PerturbationUNet
    eps: float

    def save(self, path: str | os.PathLike, manifest: dict[str, Any] | None = None) -> Path:
        return save_cnn_attack(path, self.net, self.eps, manifest)


def save_cnn_attack(path: str | os.PathLike, net: PerturbationUNet, eps: float,
                    manifest: dict[str, Any] | None = None) -> Path:
    """Save G's weights, its architecture, ε and a manifest to ``path`` (a ``.pt`` file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    width = net.stem[0].out_channels
    tmp = p.with_name(p.name + ".tmp")
    torch.save({"format": CNN_FORMAT, "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                "width": int(width), "levels": int(net.levels), "eps": float(eps),
                "manifest": dict(manifest or {})}, tmp)
    os.replace(tmp, p)
    return p


def load_cnn_attack(path: str | os.PathLike) -> tuple[PerturbationUNet, float, dict[str, Any]]:
    """Load ``(G in eval mode, ε, manifest)`` saved by :func:`save_cnn_attack`.

    Raises:
        FileNotFoundError: no such file (the message says how to make one).
        ValueError: the file is not a cnn-attack file.
    """
    how = "train one with 'python main.py train-uap FOLDER --method cnn --out cnn.pt'"
    if not path or not str(path).strip():
        raise FileNotFoundError(f"cnn-attack: no generator file given; {how}, then set 'perturbation' to its path")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"cnn-attack: generator file {str(p)!r} not found; {how} or fix the path")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cnn-attack: {p.name} is not a readable generator file ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != CNN_FORMAT:
        raise ValueError(f"cnn-attack: {p.name} is not a generator file saved by save_cnn_attack "
                         f"(format {CNN_FORMAT})")
    net = PerturbationUNet(int(data["width"]), int(data["levels"]))
    try:
        net.load_state_dict(data["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ValueError(f"cnn-attack: {p.name}'s weights do not fit its architecture") from exc
    net.eval().requires_grad_(False)
    return net, float(data["eps"]), dict(data.get("manifest") or {})


@dataclass
class CNNAttackParams(AttackParams):
    perturbation: str = param("", help="path of the trained generator file (.pt, from train-uap --method cnn)")
    eps: float = param(10 / 255, min=0.0, max=1.0, help="L∞ clip of the generated perturbation",
                       unit="×255", step=1 / 255)


@ATTACKS.register("cnn-attack")
class CNNAttack(Attack):
    """Apply a trained perturbation generator: ``clamp(x + clip_ε(δ(x)), 0, 1)``.

    Yields two step records: iteration 0 (clean) and 1 (perturbed).

    Example:
        >>> out = CNNAttack(perturbation="cnn_niqe.pt")(x, metric)
    """

    Params = CNNAttackParams
    universal = True  # reads a file trained over a folder beforehand
    presets = {"paper": {}, **linf_presets()}

    def _generator(self, device: torch.device) -> tuple[PerturbationUNet, float]:
        """The file's G on ``device`` and its ε, cached per file version."""
        path = self.params.perturbation
        stamp = None
        try:
            st = Path(path).stat()
            stamp = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size, str(device))
        except (OSError, ValueError):
            pass  # load_cnn_attack reports the missing file
        cache = self.__dict__.setdefault("_cache", {})
        if stamp is None or stamp not in cache:
            net, eps, _ = load_cnn_attack(path)
            cache.clear()
            cache[stamp] = (net.to(device), eps)
        return cache[stamp]

    def perturbation(self, x: torch.Tensor) -> torch.Tensor:
        """δ(x) clipped to the smaller of the attack's and the file's ε. Shape: like ``x``."""
        net, file_eps = self._generator(x.device)
        eps = min(self.params.eps, file_eps)
        with torch.no_grad():
            return net.delta(x.float(), file_eps).to(x.dtype).clamp(-eps, eps)

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        check_image_batch(x)
        x0 = x.detach()
        d = self.perturbation(x0)
        tracker = IterateTracker(metric, x0)
        yield tracker.record(0, x0, metric.score(x0))
        x_adv = (x0 + d).clamp_(0.0, 1.0)
        yield tracker.record(1, x_adv, metric.score(x_adv))
        return tracker.outcome(x_adv, 1, self.params.keep_best)
