"""Generative UAP: a small generator network, trained over a folder, outputs the universal
perturbation (after Poursaeed et al., "Generative Adversarial Perturbations", CVPR 2018,
universal setting; and MSU's ``generative-uap``).

A fixed input z ~ U[0, 1) (drawn from the seed) goes through a small convolutional
encoder–decoder G; the perturbation is ``δ = ε·tanh(G(z))``, so ``|δ| < ε`` by
construction. Adam trains G's weights on the mean MSU loss of mini-batches of the folder
``(batch + δ)`` clamped to [0, 1]. The trained δ (G's output, in eval mode) is saved
like any UAP, so the ``generative-uap`` attack applies it exactly like ``uap``.
:func:`train_generative_uap` trains it (also ``train-uap --method generative``).

Constrains: L∞ ≤ ε (the smaller of the attack's ``eps`` and what δ holds), image in [0, 1];
the same δ for every image.

Defaults: ε = 10/255, Adam lr 1e-3, 1 epoch, batches of 8, 256×256 (MSU's code,
``MSU_Metrics_Robustness_Benchmark``, ``methods/generative-uap/train.py``). Differences
of that code, not reproduced:

* its G is an 8-level U-Net (64 base channels, instance norm, dropout 0.5) that needs
  256×256 inputs; ours is a 4-level encoder–decoder with 16 base channels (``width``),
  small enough to train on a CPU;
* δ = (10/255)·tanh(G(z)) whatever ε, and z is clamped to ±ε after every step (z is not
  trained, so after the first step it is U[0, 1) clipped to [0, 10/255]); ours keeps z;
* G stays in training mode (dropout active) when the final δ is drawn; ours uses eval mode;
* the loss is ``1 − mean(M)/range`` whatever the metric's direction; we keep the sign.
"""
from __future__ import annotations

import os
from typing import Iterable

import torch
from torch import nn

from engine.attacks.base import ATTACKS
from engine.attacks.sign_gradient import linf_presets
from engine.attacks.uap import UAP, UAPTraining, train_epochs
from engine.metrics.base import Metric, attack_loss


class PerturbationGenerator(nn.Module):
    """Encoder–decoder: :math:`(1, 3, S, S) → (1, 3, S, S)` unbounded (tanh applied outside).

    Args:
        width: channels of the first level (doubled per level, 4 levels).

    Shape:
        S must be divisible by 8.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        act = nn.LeakyReLU(0.2)
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), act,
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.InstanceNorm2d(2 * w), act,
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.InstanceNorm2d(4 * w), act,
            nn.Conv2d(4 * w, 4 * w, 4, 2, 1), nn.InstanceNorm2d(4 * w), act,
            nn.ConvTranspose2d(4 * w, 4 * w, 4, 2, 1), nn.InstanceNorm2d(4 * w), nn.ReLU(),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), nn.InstanceNorm2d(2 * w), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(w, 3, 3, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def train_generative_uap(
    images: Iterable[torch.Tensor] | str | os.PathLike,
    metric: Metric,
    eps: float = 10 / 255,
    epochs: int = 1,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    *,
    size: int = 256,
    width: int = 16,
    device: torch.device | str | None = None,
) -> UAPTraining:
    """Train a generator whose output is a universal perturbation raising ``metric``.

    Args:
        images: a folder (searched recursively) or :math:`(3, H, W)`/:math:`(B, 3, H, W)` tensors.
        metric: the metric to raise.
        eps: L∞ bound of δ (``ε·tanh``).
        epochs: passes over the images.
        batch_size: images per Adam step.
        lr: Adam's learning rate.
        seed: seeds z, G's initial weights and the image order.
        size: side of δ and of the training images (a multiple of 8).
        width: G's first-level channels.
        device: where to train (default: the metric's device).

    Yields:
        :class:`~engine.attacks.uap.UAPTrainStep` after every batch.

    Returns:
        δ, :math:`(1, 3, size, size)` on the CPU, ``|δ| ≤ eps``.
    """
    if size % 8:
        raise ValueError(f"generative-uap: size must be a multiple of 8, got {size}")
    dev = torch.device(device) if device is not None else metric.device
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.rand((1, 3, size, size), generator=gen).to(dev)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = PerturbationGenerator(width).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)

    def update(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        delta = eps * torch.tanh(net(z))
        scores = metric.score((batch + delta).clamp(0.0, 1.0), grad=True)
        losses = attack_loss(metric, scores)
        opt.zero_grad()
        losses.mean().backward()
        opt.step()
        return scores, losses

    net.train()
    yield from train_epochs(images, update, epochs=epochs, batch_size=batch_size, seed=seed, size=size,
                            device=dev)
    net.eval()
    with torch.no_grad():
        return (eps * torch.tanh(net(z))).clamp(-eps, eps).cpu()


@ATTACKS.register("generative-uap")
class GenerativeUAP(UAP):
    """Apply a trained generative UAP (file from :func:`train_generative_uap`).

    Example:
        >>> out = GenerativeUAP(perturbation="guap_niqe.pt")(x, metric)
    """

    #: MSU applies a UAP file its own way (main's ``uap`` ``msu-literal``); not claimed here
    literal_presets: dict[str, str] = {}
    presets = {"paper": {}, **linf_presets()}
