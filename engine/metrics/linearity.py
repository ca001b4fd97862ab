"""Linearity IQA (Li, Jiang & Jiang, "Norm-in-Norm loss", ACM MM 2020; lidq92/LinearityIQA).

ResNeXt-101 32x8d; the layer3 (1024 ch) and layer4 (2048 ch) maps are average-pooled,
each reduced by a head ``Linear → BN → Linear(256) → BN → Linear(64) → BN → ReLU`` and
regressed; the final score is ``regression([f6, f7]) · k + b`` with ``k``, ``b`` from the
checkpoint (the linear map fitted on KonIQ-10k; the score may be negative).

Module names follow the authors' ``IQAModel`` (``features``, ``dr6``, ``dr7``, ``regr6``,
``regr7``, ``regression``) so their checkpoint ``p1q2.pth`` loads with ``strict=True``.
Preprocessing as their KonIQ-10k setting (``--resize``): bilinear resize to 498×664 (H×W),
ImageNet normalisation.

Example:
    >>> m = Linearity(pretrained=False)        # doctest: +SKIP
    >>> m.score(torch.rand(2, 3, 64, 64)).shape  # doctest: +SKIP
    torch.Size([2])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from engine.core.bounds import MSU_BOUNDS
from engine.metrics.base import METRICS, Metric, MetricError
from engine.metrics.options import MetricParams
from engine.metrics.weights import ensure_weights, read_checkpoint
from engine.spec.params import param

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_HW = (498, 664)

CHECKPOINT = "p1q2.pth"
# The authors publish p1q2.pth only on Baidu Pan (https://pan.baidu.com/s/1MRamimHWX8F-SOQ_QsIrvg,
# code 4z7z); this Google Drive copy is the one MSU's benchmark set-up downloads.
CHECKPOINT_URL = ("https://drive.usercontent.google.com/download?"
                  "id=1ALDFo87IJrKzGck2MEGymsgzsczh4ZkG&export=download&confirm=t")


def _reduction_head(in_features: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, 1024), nn.BatchNorm1d(1024),
                         nn.Linear(1024, 256), nn.BatchNorm1d(256),
                         nn.Linear(256, 64), nn.BatchNorm1d(64), nn.ReLU())


class LinearityIQANet(nn.Module):
    """The authors' ``IQAModel`` (arch resnext101_32x8d, pool avg, P6 = P7 = 1, no end BN).

    Shape:
        - Input: :math:`(B, 3, H, W)`, ImageNet-normalised.
        - Output: list of three :math:`(B, 1)`: layer3 head, layer4 head, final regression.
    """

    LAYER3, LAYER4 = 6, 7  # indices of layer3/layer4 in ``features``

    def __init__(self) -> None:
        super().__init__()
        import torchvision  # here, not at import: `list` and the CLI start without it

        backbone = torchvision.models.resnext101_32x8d(weights=None)
        self.features = nn.Sequential(*list(backbone.children())[:-2])
        self.dr6 = _reduction_head(1024)
        self.dr7 = _reduction_head(2048)
        self.regr6 = nn.Linear(64, 1)
        self.regr7 = nn.Linear(64, 1)
        self.regression = nn.Linear(64 * 2, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats, pq = [], []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == self.LAYER3:
                f6 = self.dr6(x.mean(dim=(2, 3)))
                feats.append(f6)
                pq.append(self.regr6(f6))
            elif i == self.LAYER4:
                f7 = self.dr7(x.mean(dim=(2, 3)))
                feats.append(f7)
                pq.append(self.regr7(f7))
        pq.append(self.regression(torch.cat(feats, dim=1)))
        return pq


def linearity_preprocess(x: torch.Tensor, resize: bool = True) -> torch.Tensor:
    """Resize to 498×664 (bilinear, antialiased like PIL) and ImageNet-normalise; differentiable."""
    if resize and tuple(x.shape[-2:]) != RESIZE_HW:
        x = F.interpolate(x, size=RESIZE_HW, mode="bilinear", align_corners=False,
                          antialias=True)
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


@dataclass
class LinearityParams(MetricParams):
    resize: bool = param(True, help="resize to 498×664 as in the authors' KonIQ-10k setting; "
                                    "off = score at the native resolution (MSU benchmark)")


@METRICS.register("linearity")
class Linearity(Metric):
    """Linearity IQA with the authors' KonIQ-10k checkpoint ``p1q2.pth``.

    Args:
        pretrained: load ``p1q2.pth`` (from ``weights_dir()``, downloaded if missing).
        weights: path of a checkpoint in the authors' layout
            (``{'model': state_dict, 'k': [...], 'b': [...]}``).
        resize: see :class:`LinearityParams`.
        download: allow downloading a missing checkpoint.

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1].
        - Output: :math:`(B,)`.
    """

    Params: ClassVar[type] = LinearityParams
    lower_better = False
    bounds = MSU_BOUNDS["linearity"]
    differentiable = True
    checkpoint_name: ClassVar[str] = CHECKPOINT
    checkpoint_url: ClassVar[str] = CHECKPOINT_URL

    def __init__(self, pretrained: bool = True, weights: str | None = None,
                 resize: bool = True, download: bool = True) -> None:
        super().__init__()
        path = None
        if weights is not None or pretrained:  # before building: fail fast, no big alloc
            path = weights or ensure_weights(CHECKPOINT, CHECKPOINT_URL, download=download,
                                             metric=self.name)
        self.net = LinearityIQANet()
        self.resize = resize
        self.register_buffer("k", torch.tensor(1.0))
        self.register_buffer("b", torch.tensor(0.0))
        if path is not None:
            self.load_checkpoint(path)
        self.net.eval()
        self.requires_grad_(False)

    def load_checkpoint(self, path: Any) -> None:
        """Load the authors' checkpoint layout (strict)."""
        ckpt = read_checkpoint(path, metric=self.name)
        if not isinstance(ckpt, dict) or "model" not in ckpt:
            raise MetricError(f"linearity: {str(path)!r} is not a LinearityIQA checkpoint "
                              "(expected a dict with 'model', 'k' and 'b')")
        state = {k.removeprefix("module."): v for k, v in ckpt["model"].items()}
        try:
            self.net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise MetricError(f"linearity: checkpoint {str(path)!r} does not fit the "
                              f"architecture: {str(exc).splitlines()[0]}") from exc
        self.k.fill_(_last(ckpt.get("k", 1.0)))
        self.b.fill_(_last(ckpt.get("b", 0.0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pq = self.net(linearity_preprocess(x.to(self.device), self.resize))
        return (pq[-1] * self.k + self.b).reshape(x.shape[0])


def _last(v: Any) -> float:
    """``k``/``b`` are stored as lists (one per output); the final output's is last."""
    if isinstance(v, (list, tuple)):
        v = v[-1]
    if isinstance(v, torch.Tensor):
        v = v.flatten()[-1].item()
    return float(v)
