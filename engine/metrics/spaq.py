"""SPAQ baseline (Fang et al., "Perceptual Quality Assessment of Smartphone Photography",
CVPR 2020; h4nwei/SPAQ): ResNet-50 whose ``fc`` regresses one score; the image's score is
the mean over 224×224 patches cut with stride 112 (plus a last row and column flush with
the bottom/right edge). No ImageNet normalisation (the loaders only convert to [0, 1]).
All of it is torch ops, so the score is differentiable w.r.t. the input image.

Two recipes for the same checkpoint ``BL_release.pt`` (read in the sources):

- **MSU's wrapper** (``msu-video-group/adversarial-defenses-for-iqa``,
  ``metrics/subjects/spaq/src/model.py``, ``MetricModel.forward``): patches of the image
  at its **native size** (``Image_load.generate_patches_custom``; no resize). The same
  file's ``SPAQ`` class resizes (``transforms.Resize(512)``) but is not the one MSU's
  benchmark calls. The paper's numbers and MSU's bounds (21.75 → 77.76) come from
  ``MetricModel``. Preset ``msu`` (default).
- **The authors' demo** (``h4nwei/SPAQ``, ``BL_demo.py`` with ``Prepare_image.Image_load(
  size=512, stride=224)``): ``adaptive_resize`` resizes the shorter side to 512 (PIL
  bilinear, the longer side truncated) — but only when both sides are at least 512;
  smaller images keep their size. Preset ``authors-demo`` (``size`` sets the 512).

Both fail on an image with a side under 224 (no patch fits); here such an image is first
resized (bilinear, antialiased) so that its shorter side is 224 — a deviation from both,
which cannot score it at all.

Example:
    >>> m = Spaq(pretrained=False)                  # doctest: +SKIP
    >>> m.score(torch.rand(2, 3, 240, 320)).shape     # doctest: +SKIP
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
from engine.metrics.checkpoints import load_strict, state_dict_of
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


PRESETS = ("msu", "authors-demo")
"""``msu``: MSU's ``MetricModel`` (native size); ``authors-demo``: ``BL_demo.py``'s resize."""


def _resize_shorter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Shorter side → ``size``, aspect kept, longer side truncated as torchvision's
    ``Resize(int)`` does; bilinear, antialiased like PIL."""
    h, w = x.shape[-2:]
    if min(h, w) == size:
        return x
    long = int(size * max(h, w) / min(h, w))
    nh, nw = (size, long) if h <= w else (long, size)
    return F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)


def spaq_patches(x: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Optionally resize as the authors' ``adaptive_resize``, then cut patches; differentiable.

    Args:
        x: :math:`(B, 3, H, W)` in [0, 1].
        size: ``None`` = native size (MSU); otherwise the shorter side becomes ``size``
            when both sides are at least ``size`` (the authors' ``Image_load``).

    Returns:
        :math:`(B, P, 3, 224, 224)`. An image with a side under 224 is first resized so
        that its shorter side is 224 (neither recipe can score it).
    """
    h, w = x.shape[-2:]
    if size is not None and min(h, w) >= size:
        x = _resize_shorter(x, size)
    elif min(h, w) < PATCH:
        x = _resize_shorter(x, PATCH)
    h, w = x.shape[-2:]
    tiles = [x[:, :, r:r + PATCH, c:c + PATCH]
             for r in patch_starts(h) for c in patch_starts(w)]
    return torch.stack(tiles, dim=1)


@dataclass
class SpaqParams(MetricParams):
    preset: str = param("msu", choices=PRESETS,
                        help="whose recipe: msu = MSU's wrapper, patches at the native size "
                             "(the paper's numbers); authors-demo = the authors' BL_demo.py, "
                             "shorter side resized to 'size' when both sides reach it")
    size: int = param(512, min=PATCH, max=4096, help="authors-demo only: shorter side after "
                                                     "resizing (authors: 512)", unit="px")


@METRICS.register("spaq")
class Spaq(Metric):
    """SPAQ baseline with the authors' checkpoint ``BL_release.pt``.

    Args:
        pretrained: load ``BL_release.pt`` (from ``weights_dir()``, downloaded if missing).
        weights: path of a checkpoint (``{'state_dict': ...}`` or a bare state dict;
            ``module.`` prefixes from DataParallel are stripped), loaded strictly.
        preset: ``msu`` (default) or ``authors-demo``; see the module docstring.
        size: the authors' resize target (``authors-demo`` only).
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

    def __init__(self, pretrained: bool = True, weights: str | None = None, preset: str = "msu",
                 size: int = 512, download: bool = True) -> None:
        super().__init__()
        if preset not in PRESETS:
            raise MetricError(f"spaq: unknown preset {preset!r}; one of {', '.join(PRESETS)}")
        if size < PATCH:
            raise MetricError(f"spaq: size must be at least {PATCH}, got {size}")
        path = None
        if weights is not None or pretrained:  # before building: fail fast
            path = weights or ensure_weights(CHECKPOINT, CHECKPOINT_URL, download=download,
                                             metric=self.name)
        self.net = SpaqBaseline()
        self.preset = preset
        self.size = int(size)
        if path is not None:
            self.load_checkpoint(path)
        self.net.eval()
        self.requires_grad_(False)

    def load_checkpoint(self, path: Any) -> None:
        """Load ``{'state_dict': ...}`` or a bare state dict strictly."""
        state = state_dict_of(read_checkpoint(path, metric=self.name), path=path, who=self.name)
        load_strict(self.net, state, source=path, who=self.name,
                    what="SPAQ baseline (authors' Baseline: ResNet-50, fc → 1)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.size if self.preset == "authors-demo" else None
        patches = spaq_patches(x.to(self.device), size)
        b, p = patches.shape[:2]
        scores = self.net(patches.reshape(b * p, *patches.shape[2:]))
        return scores.reshape(b, p).mean(dim=1)

    def extra_repr(self) -> str:
        how = f"shorter side {self.size} when both sides reach it" if self.preset == "authors-demo" \
            else "native size"
        return f"preset={self.preset!r}, {how}, 224×224 patches, stride 112"
