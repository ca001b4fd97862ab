"""Builds (and caches) the components an experiment names, on one device."""
from __future__ import annotations

import platform
import sys
from typing import Any

import torch

from engine.core.errors import ExpectedError
from engine.spec.experiment import ComponentSpec


class DeviceError(ExpectedError, RuntimeError):
    pass


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda:N`` → the N-th GPU. Asking for a
    CUDA device that is not there is an error."""
    device = (device or "auto").lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but no CUDA device is available (use --device cpu or auto)")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"{device} was requested but this machine has {torch.cuda.device_count()} CUDA "
                          f"device(s): cuda:0 … cuda:{torch.cuda.device_count() - 1}")
    return dev


def merged_params(cls: type, spec: ComponentSpec) -> dict[str, Any]:
    """A preset's overrides, then the spec's own parameters."""
    params: dict[str, Any] = {}
    if spec.preset:
        presets = getattr(cls, "presets", {})
        if spec.preset not in presets:
            from engine.spec.registry import UnknownComponent, did_you_mean

            raise UnknownComponent(f"{spec.name}: unknown preset {spec.preset!r}"
                                   f"{did_you_mean(spec.preset, presets)}; known: {', '.join(presets) or 'none'}")
        params.update(presets[spec.preset])
    params.update(spec.params)
    return params


class Runtime:
    """Component factory and cache for one device. Building a learned metric is expensive,
    so every item of a run shares the instances."""

    def __init__(self, device: str = "auto") -> None:
        self.device_name = device
        self.device = resolve_device(device)
        self._cache: dict[tuple[str, str], Any] = {}
        #: batch sizes an out-of-memory taught, per (metric key, image size)
        self.batch_limits: dict[tuple, int] = {}

    def metric(self, spec: ComponentSpec):
        from engine.metrics import create_metric

        key = ("metric", spec.key)
        if key not in self._cache:
            self._cache[key] = create_metric(spec.name, device=str(self.device), **spec.params)
        return self._cache[key]

    def attack(self, spec: ComponentSpec):
        from engine.attacks import ATTACKS

        key = ("attack", spec.key)
        if key not in self._cache:
            cls = ATTACKS.get(spec.name)
            self._cache[key] = cls(merged_params(cls, spec))
        return self._cache[key]

    def defence(self, spec: ComponentSpec):
        from engine.defences import DEFENCES

        key = ("defence", spec.key)
        if key not in self._cache:
            cls = DEFENCES.get(spec.name)
            self._cache[key] = cls(merged_params(cls, spec)).to(self.device)
        return self._cache[key]

    def manifest(self) -> dict[str, Any]:
        """Versions and hardware, for the store's manifest."""
        import engine

        versions = {"python": sys.version.split()[0], "torch": torch.__version__, "tool": engine.__version__}
        for mod in ("pyiqa", "kornia", "numpy", "cv2", "PIL"):
            try:
                versions[mod] = __import__(mod).__version__
            except Exception:  # noqa: BLE001 - optional in the manifest
                versions[mod] = None
        gpu = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None
        return {"device": str(self.device), "device_requested": self.device_name, "gpu": gpu,
                "cuda": torch.version.cuda if self.device.type == "cuda" else None,
                "platform": platform.platform(), "versions": versions,
                "torch_threads": torch.get_num_threads()}
