"""The paper's trainable FCN purification filter, and the ``fcn`` defence that loads it.

Architecture (padding 1 everywhere, so the size is kept)::

    Conv3×3(3→64) → LeakyReLU(0.2) → Conv3×3(64→16) → InstanceNorm(16) → LeakyReLU(0.2)
    → Conv3×3(16→3) → tanh → clamp [0, 1]

Parameter count: 1,792 + 9,232 + 435 = **11,459** (InstanceNorm without affine
parameters, PyTorch's default; with affine it would be 11,491). The residual variant
(``x + tanh(·)``) has the same count; the paper's plain form is the default. The filter is
trained by :mod:`engine.training.fcn_trainer` (``python main.py train-fcn``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.defences.base import DEFENCES, Defence, DefenceError
from engine.metrics.base import Availability, check_image_batch
from engine.metrics.checkpoints import load_strict
from engine.spec.params import param

#: identifies our checkpoint files (the trainer writes them)
CHECKPOINT_FORMAT = "iqa-lab-fcn"
#: file looked up in the weights folder when no checkpoint is named
DEFAULT_CHECKPOINT = "fcn.pt"


class FCNFilter(nn.Module):
    """The paper's three-layer fully convolutional filter.

    Args:
        residual: predict a correction added to the input (``x + tanh(f(x))``) instead of
            the image itself (``tanh(f(x))``, the paper's form).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1].
        - Output: :math:`(B, 3, H, W)` in [0, 1].

    Example:
        >>> net = FCNFilter()
        >>> sum(p.numel() for p in net.parameters())
        11459
    """

    def __init__(self, residual: bool = False) -> None:
        super().__init__()
        self.residual = residual
        self.body = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, 16, 3, padding=1),
            nn.InstanceNorm2d(16),
            nn.LeakyReLU(0.2),
            nn.Conv2d(16, 3, 3, padding=1),
        )

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """The output before the final clamp (what training fits with MSE, so that pixels
        driven below 0 still get gradient)."""
        check_image_batch(x)
        y = torch.tanh(self.body(x))
        return x + y if self.residual else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.raw(x).clamp(0.0, 1.0)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def resolve_checkpoint(checkpoint: str) -> Path:
    """The checkpoint file a ``checkpoint`` parameter names ('' → ``fcn.pt`` in the weights
    folder; a bare file name is also looked up there)."""
    from engine.metrics.weights import weights_dir

    if not checkpoint:
        return weights_dir() / DEFAULT_CHECKPOINT
    p = Path(checkpoint).expanduser()
    if not p.is_file() and p.parent == Path(".") and (weights_dir() / p.name).is_file():
        return weights_dir() / p.name
    return p


#: MSU's FCN module names (``metrics/defences/fcn/run.py``: ``conv1/2/3``) → ours
MSU_KEYS = {"conv1": "body.0", "conv2": "body.2", "conv3": "body.5"}


def from_msu_state_dict(sd: dict[str, Any]) -> dict[str, Any]:
    """Map the state dict of MSU's published ``fcn_mse.pth`` (``{'model': {conv1.weight,
    conv1.bias, conv2.*, conv3.*}}``; its instance norm has no parameters) to
    :class:`FCNFilter`'s keys. The architecture is the same: conv 3→64, LeakyReLU(0.2),
    conv 64→16, instance norm, LeakyReLU(0.2), conv 16→3, tanh (MSU clamps to [0, 1]).

    Raises:
        DefenceError: a key outside conv1/2/3 (the caller then loads strictly).
    """
    out = {}
    for key, value in sd.items():
        layer, _, rest = str(key).partition(".")
        if layer not in MSU_KEYS:
            raise DefenceError(f"fcn: unexpected key {key!r} in an MSU-layout checkpoint "
                               f"(expected {', '.join(MSU_KEYS)})")
        out[f"{MSU_KEYS[layer]}.{rest}"] = value
    return out


def _is_msu_layout(ckpt: Any) -> bool:
    sd = ckpt.get("model") if isinstance(ckpt, dict) else None
    return isinstance(sd, dict) and any(str(k).startswith("conv1.") for k in sd)


def load_fcn_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                        ) -> tuple[FCNFilter, dict[str, Any]]:
    """Build the filter from one of our checkpoint files, or from MSU's ``fcn_mse.pth``
    (``{'model': {conv1/2/3 …}}``, loaded strictly into the same architecture).

    Returns:
        (model in eval mode, the training manifest stored with it).

    Raises:
        DefenceError: missing file, or a file that is not an FCN checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise DefenceError(f"fcn: checkpoint {str(path)!r} not found; train one with "
                           f"'python main.py train-fcn FOLDER --out {path.name}'")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt/foreign files get one clear message
        raise DefenceError(f"fcn: cannot read checkpoint {str(path)!r}: {type(exc).__name__}: {exc}") from None
    if _is_msu_layout(ckpt):
        ckpt = {"format": CHECKPOINT_FORMAT, "state_dict": from_msu_state_dict(ckpt["model"]),
                "manifest": {"source": "MSU fcn checkpoint (conv1/2/3 layout)"}}
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or "state_dict" not in ckpt:
        raise DefenceError(f"fcn: {str(path)!r} is not an FCN checkpoint written by train-fcn "
                           "nor MSU's fcn_mse.pth layout")
    model = FCNFilter(**dict(ckpt.get("arch") or {}))
    load_strict(model, ckpt["state_dict"], source=path, who="fcn", what="FCN filter", error=DefenceError)
    model.eval().requires_grad_(False)
    return model, dict(ckpt.get("manifest") or {})


@dataclass
class FCNParams:
    checkpoint: str = param("", help="FCN checkpoint written by train-fcn "
                                     f"('' = {DEFAULT_CHECKPOINT} in the weights folder)")


@DEFENCES.register("fcn")
class FCNDefence(Defence):
    """The paper's FCN filter, loaded from a checkpoint (differentiable, deterministic).

    Example:
        >>> d = FCNDefence(checkpoint="runs/fcn.pt")
        >>> y = d(x)
    """

    Params = FCNParams
    differentiable = True
    random = False

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self._model: FCNFilter | None = None
        self.manifest: dict[str, Any] = {}

    @classmethod
    def availability(cls, params: dict[str, Any] | None = None) -> Availability:
        path = resolve_checkpoint(str((params or {}).get("checkpoint", "") or ""))
        if not path.is_file():
            return Availability("unavailable", f"no FCN checkpoint at {path}; train one with "
                                               "'python main.py train-fcn FOLDER --out "
                                               f"{path}' or set the 'checkpoint' parameter")
        return Availability("ready")

    @property
    def model(self) -> FCNFilter:
        if self._model is None:
            model, self.manifest = load_fcn_checkpoint(resolve_checkpoint(self.params.checkpoint))
            self._model = model.to(self.device)
        return self._model

    def to(self, device: torch.device | str) -> FCNDefence:
        super().to(device)
        if self._model is not None:
            self._model = self._model.to(self.device)
        return self

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        model = self.model
        return model(x.to(next(model.parameters()).device)).to(x.device)
