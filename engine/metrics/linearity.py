"""Linearity IQA (Li, Jiang & Jiang, "Norm-in-Norm loss", ACM MM 2020; lidq92/LinearityIQA).

ResNeXt-101 32x8d; the layer3 (1024 ch) and layer4 (2048 ch) maps are average-pooled,
each reduced by a head ``Linear → BN → Linear(256) → BN → Linear(64) → BN → ReLU`` and
regressed; the final score is ``regression([f6, f7]) · k + b`` with ``k``, ``b`` from the
checkpoint (the linear map fitted on KonIQ-10k; the score may be negative).

Module names follow the authors' ``IQAModel`` (``features``, ``dr6``, ``dr7``, ``regr6``,
``regr7``, ``regression``) so their checkpoint ``p1q2.pth`` loads strictly.

Three recipes exist for the same checkpoint, and they disagree (read in the sources):

- **MSU's wrapper** (``msu-video-group/adversarial-defenses-for-iqa``,
  ``metrics/subjects/linearity/src/model.py``, ``MetricModel``): ImageNet-normalises the
  image at its native size (no resize) and maps the final output with
  ``checkpoint['k'][0]``, ``checkpoint['b'][0]``. The paper's numbers and MSU's bounds
  (25.78 → 83.23) come from it.
- **The authors' training code** (``lidq92/LinearityIQA``, ``IQAperformance.py``,
  ``linear_mapping``): the stored ``k``/``b`` are three-element lists fitted by least
  squares; index 0 belongs to the final output ``y_pred[-1]``, indices 1 and 2 to the
  layer3/layer4 heads ``y_pred[0]``/``y_pred[1]``. ``main.py --resize`` (off by default;
  the KonIQ-10k set-up of the README) resizes to 498×664 (PIL bilinear).
- **The authors' demo** (``test_demo.py``): native size unless ``--resize`` (498×664),
  then prints ``y[-1] · k[-1] + b[-1]`` — the layer4 head's mapping applied to the final
  output, which the training code never fitted.

:data:`PRESETS` names each: ``msu`` (default, MSU's wrapper), ``authors-train-resize``
(training code's mapping at 498×664), ``authors-demo`` (demo, native size) and
``authors-demo-resize`` (demo with ``--resize``; this lab's default before issue 26).

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
from engine.metrics.checkpoints import WeightsMismatch, load_strict, state_dict_of
from engine.metrics.weights import ensure_weights, read_checkpoint
from engine.spec.params import param

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_HW = (498, 664)

#: preset → (resize to :data:`RESIZE_HW`, index into the checkpoint's ``k``/``b`` lists)
PRESETS: dict[str, tuple[bool, int]] = {
    "msu": (False, 0),                   # MSU's MetricModel: native size, k[0], b[0]
    "authors-train-resize": (True, 0),   # authors' main.py --resize + IQAperformance's k[0]
    "authors-demo": (False, -1),         # authors' test_demo.py: native size, k[-1], b[-1]
    "authors-demo-resize": (True, -1),   # test_demo.py --resize: 498×664, k[-1], b[-1]
}

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
    preset: str = param("msu", choices=tuple(PRESETS),
                        help="whose recipe: msu = MSU's wrapper (native size, k[0]/b[0]; the "
                             "paper's numbers); authors-train-resize = 498×664, k[0]/b[0]; "
                             "authors-demo = test_demo.py (native, k[-1]/b[-1]); "
                             "authors-demo-resize = test_demo.py --resize (498×664, k[-1]/b[-1])")


@METRICS.register("linearity")
class Linearity(Metric):
    """Linearity IQA with the authors' KonIQ-10k checkpoint ``p1q2.pth``.

    Args:
        pretrained: load ``p1q2.pth`` (from ``weights_dir()``, downloaded if missing).
        weights: path of a checkpoint in the authors' layout
            (``{'model': state_dict, 'k': [k0, k1, k2], 'b': [b0, b1, b2]}``), loaded
            strictly (``module.`` prefixes are stripped).
        preset: see :data:`PRESETS` and the module docstring (default ``msu``).
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
                 preset: str = "msu", download: bool = True) -> None:
        super().__init__()
        if preset not in PRESETS:
            raise MetricError(f"linearity: unknown preset {preset!r}; one of {', '.join(PRESETS)}")
        path = None
        if weights is not None or pretrained:  # before building: fail fast, no big alloc
            path = weights or ensure_weights(CHECKPOINT, CHECKPOINT_URL, download=download,
                                             metric=self.name)
        self.net = LinearityIQANet()
        self.preset = preset
        self.resize, self.mapping_index = PRESETS[preset]
        self.register_buffer("k", torch.tensor(1.0))
        self.register_buffer("b", torch.tensor(0.0))
        if path is not None:
            self.load_checkpoint(path)
        self.net.eval()
        self.requires_grad_(False)

    def load_checkpoint(self, path: Any) -> None:
        """Load the authors' checkpoint layout strictly; ``k``/``b`` per :attr:`preset`."""
        ckpt = read_checkpoint(path, metric=self.name)
        if not isinstance(ckpt, dict) or "model" not in ckpt:
            raise WeightsMismatch(f"linearity: {str(path)!r} is not a LinearityIQA checkpoint "
                                  "(expected a dict with 'model', 'k' and 'b')", str(path))
        state = state_dict_of(ckpt["model"], path=path, who=self.name)
        load_strict(self.net, state, source=path, who=self.name,
                    what="LinearityIQA network (authors' IQAModel)")
        self.k.fill_(_pick(ckpt.get("k", 1.0), self.mapping_index, "k", path))
        self.b.fill_(_pick(ckpt.get("b", 0.0), self.mapping_index, "b", path))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pq = self.net(linearity_preprocess(x.to(self.device), self.resize))
        return (pq[-1] * self.k + self.b).reshape(x.shape[0])

    def extra_repr(self) -> str:
        i = self.mapping_index
        return (f"preset={self.preset!r}, resize={'498x664' if self.resize else 'native'}, "
                f"mapping=k[{i}]·y+b[{i}]")


def _pick(v: Any, index: int, name: str, path: Any) -> float:
    """``k``/``b`` are lists (final output, layer3 head, layer4 head); a scalar is used as is."""
    if isinstance(v, torch.Tensor):
        v = v.flatten().tolist()
    if isinstance(v, (list, tuple)):
        if not v:
            raise WeightsMismatch(f"linearity: {str(path)!r} has an empty {name!r}", str(path))
        v = v[index]
    return float(v)
