"""MSU's published metric wrappers re-derived as plain torch/torchvision, for conformance tests.

Written from the descriptions of ``metrics/subjects/{linearity,spaq,meta-iqa}/src/model.py``
in ``msu-video-group/adversarial-defenses-for-iqa`` (each ``MetricModel``), independently
of the engine: the networks are rebuilt here with the authors' module names, given seeded
random weights (BatchNorm statistics and affine parameters too, so a skipped tensor would
show), saved in the file layout each wrapper loads, and scored the way each
``MetricModel.forward`` does:

- Linearity: ImageNet normalisation at the native size → ``IQAModel`` (ResNeXt-101 32x8d,
  SPSP average pooling of layer3/layer4) → ``y[-1] * k[0] + b[0]``; file
  ``{'model': state, 'k': [3], 'b': [3]}``.
- SPAQ: 224×224 patches of the native-size image, stride 112 plus a last one flush with
  the edge (``generate_patches_custom``), ``Baseline`` (ResNet-50, fc → 1), mean; file
  ``{'state_dict': state}``.
- MetaIQA: ImageNet normalisation at the native size → ``resnet_layer`` (ResNet-18) →
  ``net`` (``BaselineModel1``); file: the bare state dict (``resnet_layer.*``, ``net.*``).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    return torchvision.transforms.Normalize(MEAN, STD)(x)


def randomise(net: nn.Module, seed: int) -> nn.Module:
    """Seeded weights everywhere, BatchNorm statistics and affine parameters included.

    Convolutions and linears keep a fan-in scaling so that the deep ResNets stay finite
    (their own init, re-drawn from ``seed``); BatchNorm gets running means/variances and
    affine parameters away from the identity.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(0.1 + 0.2 * torch.rand(m.weight.shape, generator=g))
    return net.eval()


# --- Linearity (authors' IQAModel, MSU's MetricModel) -------------------------------------


def _spsp_avg(x: torch.Tensor) -> torch.Tensor:
    """The authors' SPSP with P=1, method 'avg': one average pool over the whole map."""
    return F.avg_pool2d(x, [int(d) for d in x.shape[-2:]]).view(x.shape[0], -1)


class IQAModel(nn.Module):
    """resnext101_32x8d, pool avg, P6 = P7 = 1, no BN at the end (the released p1q2.pth)."""

    def __init__(self) -> None:
        super().__init__()
        backbone = torchvision.models.resnext101_32x8d(weights=None)
        self.features = nn.Sequential(*list(backbone.children())[:-2])

        def head(width: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(width, 1024), nn.BatchNorm1d(1024), nn.Linear(1024, 256),
                                 nn.BatchNorm1d(256), nn.Linear(256, 64), nn.BatchNorm1d(64), nn.ReLU())

        self.dr6, self.dr7 = head(1024), head(2048)
        self.regr6, self.regr7 = nn.Linear(64, 1), nn.Linear(64, 1)
        self.regression = nn.Linear(128, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f, pq = [], []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == 6:
                x6 = self.dr6(_spsp_avg(x))
                f.append(x6)
                pq.append(self.regr6(x6))
            if i == 7:
                x7 = self.dr7(_spsp_avg(x))
                f.append(x7)
                pq.append(self.regr7(x7))
        pq.append(self.regression(torch.cat(f, dim=1)))
        return pq


LINEARITY_K = [2.5, -4.0, 7.0]
LINEARITY_B = [40.0, 3.0, -11.0]
"""Distinct per index, so that using k[-1]/b[-1] instead of k[0]/b[0] shows."""


class MsuLinearity:
    """MSU's ``MetricModel`` for Linearity, over a seeded random ``IQAModel``."""

    def __init__(self, seed: int = 11) -> None:
        self.model = randomise(IQAModel(), seed)
        self.k, self.b = LINEARITY_K[0], LINEARITY_B[0]

    def save(self, path: Path, state: dict | None = None) -> Path:
        torch.save({"model": self.model.state_dict() if state is None else state,
                    "k": list(LINEARITY_K), "b": list(LINEARITY_B)}, path)
        return path

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return (self.model(imagenet_normalise(image))[-1] * self.k + self.b).reshape(-1)


# --- SPAQ (authors' Baseline, MSU's MetricModel) ------------------------------------------


class Baseline(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = torchvision.models.resnet50(weights=None)
        self.backbone.fc = nn.Linear(self.backbone.fc.in_features, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


def _offsets(length: int, size: int = 224) -> list[int]:
    stride = int(size / 2)
    idx = [i * stride for i in range(int((length - size) / stride) + 1)]
    if length - size != idx[-1]:
        idx.append(length - size)
    return idx


def generate_patches_custom(image: torch.Tensor, size: int = 224) -> torch.Tensor:
    """One image (1×3×H×W) → N×3×224×224, rows outer, columns inner."""
    img = image.to(torch.float32).squeeze(0)
    _, h, w = img.shape
    return torch.stack([img[:, r:r + size, c:c + size]
                        for r in _offsets(h, size) for c in _offsets(w, size)], 0).contiguous()


class MsuSpaq:
    """MSU's ``MetricModel`` for SPAQ (one image per call, as it squeezes the batch)."""

    def __init__(self, seed: int = 12) -> None:
        self.model = randomise(Baseline(), seed)

    def save(self, path: Path, state: dict | None = None) -> Path:
        torch.save({"state_dict": self.model.state_dict() if state is None else state}, path)
        return path

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.model(generate_patches_custom(image[i:i + 1])).mean()
                            for i in range(image.shape[0])])


# --- MetaIQA (MSU's MetaIQA module + MetricModel) -----------------------------------------


class BaselineModel1(nn.Module):
    def __init__(self, num_classes: int = 1, keep_probability: float = 0.5,
                 inputsize: int = 1000) -> None:
        super().__init__()
        p = 1 - keep_probability
        self.fc1, self.bn1, self.relu1, self.drop1 = (nn.Linear(inputsize, 1024), nn.BatchNorm1d(1024),
                                                      nn.PReLU(), nn.Dropout(p))
        self.fc2, self.bn2, self.relu2, self.drop2 = (nn.Linear(1024, 512), nn.BatchNorm1d(512),
                                                      nn.PReLU(), nn.Dropout(p))
        self.fc3, self.sig = nn.Linear(512, num_classes), nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.relu1(self.bn1(self.fc1(x))))
        x = self.drop2(self.relu2(self.bn2(self.fc2(x))))
        return self.sig(self.fc3(x))


class MetaIQANet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.resnet_layer = torchvision.models.resnet18(weights=None)
        self.net = BaselineModel1(1, 0.5, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.resnet_layer(x))


class MsuMetaIqa:
    """MSU's ``MetricModel`` for MetaIQA over a seeded random network."""

    def __init__(self, seed: int = 13) -> None:
        self.model = randomise(MetaIQANet(), seed)

    def save(self, path: Path, state: dict | None = None) -> Path:
        torch.save(self.model.state_dict() if state is None else state, path)
        return path

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(imagenet_normalise(image)).reshape(-1)
