"""Cumulative UAP: a universal perturbation accumulated from raw gradients over a folder.

MSU's own universal method (its benchmarks' ``cumulative-uap``; no separate paper): δ
starts at a small constant, and every mini-batch adds the negative gradient of the mean
MSU loss, unscaled by a sign, ``δ ← clip_ε(δ − lr·∇_δ mean loss)``, so the steps are
large where the metric is sensitive and small elsewhere (the ``uap`` trainer takes sign
steps instead). :func:`train_cumulative_uap` trains it (also ``train-uap --method
cumulative``); the ``cumulative-uap`` attack applies the saved file exactly like ``uap``.

Constrains: L∞ ≤ ε (the smaller of the attack's ``eps`` and what δ holds), image in [0, 1];
the same δ for every image.

Defaults (MSU's code, ``MSU_Metrics_Robustness_Benchmark``,
``robustness_benchmark/methods/cumulative-uap/train.py``): ε = 0.1, 5 epochs, batches of
8, lr 1 (the raw gradient), δ₀ = 1e-4, 256×256. Differences of that code, not reproduced:

* the loss is ``1 − mean(M)/range`` whatever the metric's direction (for lower-is-better
  metrics it lowers quality); we keep the metric's sign;
* the perturbed batch is not clamped to [0, 1] before scoring; we clamp, as the attack does
  when it applies δ;
* each step draws a fresh shuffled batch (``next(iter(loader))``, images may repeat within
  an epoch); we visit every image once per epoch in a seeded order;
* MSU's presets vary an "Amplitude" of the applied UAP (``attack_presets.json``); ours
  clip at ε.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import torch

from engine.attacks.base import ATTACKS
from engine.attacks.sign_gradient import linf_presets
from engine.attacks.uap import UAP, UAPParams, UAPTraining, train_epochs
from engine.metrics.base import Metric, attack_loss
from engine.spec.params import param


def train_cumulative_uap(
    images: Iterable[torch.Tensor] | str | os.PathLike,
    metric: Metric,
    eps: float = 0.1,
    epochs: int = 5,
    batch_size: int = 8,
    lr: float = 1.0,
    seed: int = 0,
    *,
    size: int = 256,
    init: float = 1e-4,
    device: torch.device | str | None = None,
) -> UAPTraining:
    """Train a cumulative universal perturbation that raises ``metric`` on every image.

    Args:
        images: a folder (searched recursively) or :math:`(3, H, W)`/:math:`(B, 3, H, W)` tensors.
        metric: the metric to raise.
        eps: L∞ budget of δ.
        epochs: passes over the images.
        batch_size: images per update.
        lr: factor of the raw gradient added each batch.
        seed: seeds the image order (same seed and data → same δ).
        size: side of δ and of the training images.
        init: δ's initial constant value.
        device: where to train (default: the metric's device).

    Yields:
        :class:`~engine.attacks.uap.UAPTrainStep` after every batch.

    Returns:
        δ, :math:`(1, 3, size, size)` on the CPU, ``|δ| ≤ eps``.
    """
    dev = torch.device(device) if device is not None else metric.device
    state = {"delta": torch.full((1, 3, size, size), float(init), device=dev).clamp(-eps, eps)}

    def update(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = state["delta"].detach().requires_grad_(True)
        scores = metric.score((batch + d).clamp(0.0, 1.0), grad=True)
        losses = attack_loss(metric, scores)
        (grad,) = torch.autograd.grad(losses.mean(), d)
        state["delta"] = (state["delta"] - lr * grad).clamp(-eps, eps)
        return scores, losses

    yield from train_epochs(images, update, epochs=epochs, batch_size=batch_size, seed=seed, size=size,
                            device=dev)
    return state["delta"].detach().cpu()


@dataclass
class CumulativeUAPParams(UAPParams):
    eps: float = param(0.1, min=0.0, max=1.0, help="L∞ clip applied to the resized perturbation",
                       unit="×255", step=1 / 255)


@ATTACKS.register("cumulative-uap")
class CumulativeUAP(UAP):
    """Apply a trained cumulative UAP (file from :func:`train_cumulative_uap`).

    Example:
        >>> out = CumulativeUAP(perturbation="cuap_niqe.pt")(x, metric)
    """

    Params = CumulativeUAPParams
    #: MSU applies a UAP file its own way (main's ``uap`` ``msu-literal``); not claimed here
    literal_presets: dict[str, str] = {}
    presets = {"defaults": {},
               **linf_presets()}
