"""SPAQ baseline (Fang et al., "Perceptual Quality Assessment of Smartphone Photography",
CVPR 2020; h4nwei/SPAQ): ResNet-50 whose ``fc`` regresses one score.

Preprocessing as the authors' ``Image_load(size=512, stride=224)``: resize so the shorter
side is 512 (aspect kept, bilinear), cut 224×224 patches with stride 112 (plus a last row
and column flush with the bottom/right edge), score = mean over the patches. No ImageNet
normalisation (their loader only converts to [0, 1]). All of it is torch ops, so the score
is differentiable w.r.t. the input image.

Example:
    >>> m = Spaq(pretrained=False, size=224)       # doctest: +SKIP
    >>> m.score(torch.rand(2, 3, 64, 64)).shape     # doctest: +SKIP
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

PATCH = 224
CHECKPOINT = "BL_release.pt"
# Only published on Google Drive (link in the h4nwei/SPAQ README); direct-download form.
CHECKPOINT_URL = ("https://drive.usercontent.google.com/download?"
                  "id=1pXjXAIItViTFs7qUBY-b11WY50mzoVM2&export=download&confirm=t")


class SpaqBaseline(nn.Module):
    """The authors' ``Baseline``: ``backbone`` = torchvision ResNet-50, fc → Linear(2048, 1).

    Shape:
        - Input: :math:`(N, 3, 224, 224)` patches in [0, 1].
        - Output: :math:`(N, 1)`.
    """

    def __init__(self) -> None:
        super().__init__()
        import torchvision  # here, not at import: `list` and the CLI start without it

        self.backbone = torchvision.models.resnet50(weights=None)
        self.backbone.fc = nn.Linear(self.backbone.fc.in_features, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


def patch_starts(length: int, patch: int = PATCH) -> list[int]:
    """The authors' patch offsets: stride ``patch // 2``, plus one flush with the end."""
    stride = patch // 2
    starts = [i * stride for i in range((length - patch) // stride + 1)]
    if starts[-1] != length - patch:
        starts.append(length - patch)
    return starts


def spaq_patches(x: torch.Tensor, size: int = 512) -> torch.Tensor:
    """Resize (shorter side → ``size``) and cut patches; differentiable.

    Args:
        x: :math:`(B, 3, H, W)` in [0, 1].
        size: target shorter side (at least 224).

    Returns:
        :math:`(B, P, 3, 224, 224)`.
    """
    h, w = x.shape[-2:]
    if min(h, w) != size:
        long = int(size * max(h, w) / min(h, w))  # torchvision.Resize(int) truncates too
        nh, nw = (size, long) if h <= w else (long, size)
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False,
                          antialias=True)
    h, w = x.shape[-2:]
    tiles = [x[:, :, r:r + PATCH, c:c + PATCH]
             for r in patch_starts(h) for c in patch_starts(w)]
    return torch.stack(tiles, dim=1)


@dataclass
class SpaqParams(MetricParams):
    size: int = param(512, min=PATCH, max=4096, help="shorter side after resizing "
                                                     "(authors: 512)", unit="px")


@METRICS.register("spaq")
class Spaq(Metric):
    """SPAQ baseline with the authors' checkpoint ``BL_release.pt``.

    Args:
        pretrained: load ``BL_release.pt`` (from ``weights_dir()``, downloaded if missing).
        weights: path of a checkpoint (``{'state_dict': ...}`` or a bare state dict;
            ``module.`` prefixes from DataParallel are stripped).
        size: shorter side after resizing.
        download: allow downloading a missing checkpoint.

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1].
        - Output: :math:`(B,)`.
    """

    Params: ClassVar[type] = SpaqParams
    lower_better = False
    bounds = MSU_BOUNDS["spaq"]
    differentiable = True
    checkpoint_name: ClassVar[str] = CHECKPOINT
    checkpoint_url: ClassVar[str] = CHECKPOINT_URL

    def __init__(self, pretrained: bool = True, weights: str | None = None, size: int = 512,
                 download: bool = True) -> None:
        super().__init__()
        if size < PATCH:
            raise MetricError(f"spaq: size must be at least {PATCH}, got {size}")
        path = None
        if weights is not None or pretrained:  # before building: fail fast
            path = weights or ensure_weights(CHECKPOINT, CHECKPOINT_URL, download=download,
                                             metric=self.name)
        self.net = SpaqBaseline()
        self.size = int(size)
        if path is not None:
            self.load_checkpoint(path)
        self.net.eval()
        self.requires_grad_(False)

    def load_checkpoint(self, path: Any) -> None:
        ckpt = read_checkpoint(path, metric=self.name)
        state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise MetricError(f"spaq: {str(path)!r} is not a SPAQ checkpoint")
        state = {k.removeprefix("module."): v for k, v in state.items()}
        try:
            self.net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise MetricError(f"spaq: checkpoint {str(path)!r} does not fit the "
                              f"architecture: {str(exc).splitlines()[0]}") from exc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = spaq_patches(x.to(self.device), self.size)
        b, p = patches.shape[:2]
        scores = self.net(patches.reshape(b * p, *patches.shape[2:]))
        return scores.reshape(b, p).mean(dim=1)
