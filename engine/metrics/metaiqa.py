"""MetaIQA (Zhu et al., CVPR 2020) through pyiqa's network, scored as MSU's wrapper does.

The network is pyiqa's ``MetaIQA`` arch: a torchvision ResNet-18 (``resnet_layer``, its
1000-way ``fc`` kept) and the authors' head ``BaselineModel1`` (``head``: Linear(1000,
1024) → BN → PReLU → Dropout → Linear(512) → BN → PReLU → Dropout → Linear(1) → sigmoid).
Recipes for the same weights (read in the sources):

- **MSU's wrapper** (``msu-video-group/adversarial-defenses-for-iqa``,
  ``metrics/subjects/meta-iqa/src/model.py``, ``MetricModel``): ImageNet-normalises the
  image at its **native size** and runs ``resnet_layer`` then ``net`` (the head). Its
  file is a bare state dict named ``resnet_layer.*`` / ``net.*`` and is loaded with
  ``strict=True``. Preset ``msu`` (default); the paper's numbers come from it.
- **pyiqa** (``pyiqa/archs/metaiqa_arch.py``, ``MetaIQA.preprocess``): resizes every
  image to 224×224 (bilinear, no antialiasing) before normalising; it renames ``net.`` →
  ``head.`` only on its own download path and loads a ``pretrained_model_path`` with
  ``strict=False`` — a file in MSU's layout then leaves the whole head random (18
  tensors) without a word. Here a ``weights=FILE`` is renamed and loaded strictly
  (:data:`~engine.metrics.pyiqa_metric.LAYOUT_RENAMES`). Preset ``pyiqa-224``.
- **The authors** (``zhuhancheng/MetaIQA``, ``MetaIQA_FineTune_WILDLIVE.py``,
  ``load_data('test')``): ``Rescale((224, 224))`` with ``skimage.transform.resize``
  (antialiased) — close to, not bit-equal with, ``pyiqa-224``.

Example:
    >>> m = create_metric("metaiqa", pretrained=False)          # doctest: +SKIP
    >>> m.score(torch.rand(1, 3, 240, 320)).shape                 # doctest: +SKIP
    torch.Size([1])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from engine.metrics.base import MetricError
from engine.metrics.options import MetricParams
from engine.metrics.pyiqa_metric import PyiqaMetric
from engine.spec.params import param

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PRESETS = ("msu", "pyiqa-224")
"""``msu``: MSU's ``MetricModel`` (native size); ``pyiqa-224``: pyiqa's 224×224 resize."""


@dataclass
class MetaIqaParams(MetricParams):
    preset: str = param("msu", choices=PRESETS,
                        help="whose recipe: msu = MSU's wrapper, native size (the paper's "
                             "numbers); pyiqa-224 = pyiqa's resize to 224×224 (bilinear)")


class MetaIqa(PyiqaMetric):
    """pyiqa's MetaIQA network with MSU's native-size scoring by default.

    Args:
        name: ``"metaiqa"``.
        pretrained, weights, download: as :class:`PyiqaMetric` (``weights`` in MSU's /
            the authors' layout ``net.*`` or pyiqa's ``head.*``, loaded strictly).
        preset: ``msu`` (default) or ``pyiqa-224``.

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1]; at least 32×32 for ``msu`` (ResNet-18's
          five stride-2 stages; smaller maps still run but are degenerate).
        - Output: :math:`(B,)` in (0, 1).
    """

    Params: ClassVar[type] = MetaIqaParams

    def __init__(self, name: str = "metaiqa", *, pretrained: bool = True,
                 weights: str | None = None, download: bool = True, preset: str = "msu") -> None:
        if preset not in PRESETS:
            raise MetricError(f"metaiqa: unknown preset {preset!r}; one of {', '.join(PRESETS)}")
        super().__init__(name, pretrained=pretrained, weights=weights, download=download)
        self.preset = preset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preset == "pyiqa-224":
            return super().forward(x)
        x = x.to(self.device)
        mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
            out = self.net.head(self.net.resnet_layer((x - mean) / std))
        return out.reshape(x.shape[0]).float()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, preset={self.preset!r}"
