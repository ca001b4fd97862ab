"""Shared plumbing of the neural purifiers: lazy loading, device moves, availability.

A neural defence names what it needs (weights files, packages) in :meth:`missing`; the
registry lists it as unavailable with those reasons (file name, URL, folder) instead of
failing later, and applying it without them raises a :class:`DefenceError` at once,
before anything is loaded or fetched.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from engine.defences.base import Defence, DefenceError
from engine.metrics.base import Availability
from engine.spec.params import ParamError, make_params


def weights_folder() -> Path:
    """The one weights folder (``$IQA_LAB_WEIGHTS``, else torch hub's checkpoints)."""
    from engine.metrics.weights import weights_dir

    return weights_dir()


def find_weights(name_or_path: str) -> Path | None:
    """An existing weights file: the path itself, else that file name in the weights folder."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    candidate = weights_folder() / p.name
    return candidate if candidate.is_file() and candidate.stat().st_size > 0 else None


def missing_message(filename: str, url: str, what: str) -> str:
    """User-facing text for a missing weights file: its name, URL and the folder."""
    from engine.metrics.weights import WEIGHTS_ENV

    return (f"{what}: weights file {filename!r} not found; download it from {url} into "
            f"{weights_folder()} (or set {WEIGHTS_ENV} to the folder that has it)")


def fetch_weights(filename: str, url: str, *, allow_download: bool, what: str) -> Path:
    """The weights file's path; downloads it into the weights folder only when allowed.

    Raises:
        DefenceError: missing and not allowed (or not able) to download; names file, URL, folder.
    """
    found = find_weights(filename)
    if found is not None:
        return found
    if not allow_download:
        raise DefenceError(missing_message(filename, url, what))
    from engine.metrics.weights import WeightsUnavailable, ensure_weights

    try:
        return ensure_weights(Path(filename).name, url, download=True, metric=what)
    except WeightsUnavailable as exc:
        raise DefenceError(str(exc)) from None


class NeuralDefence(Defence):
    """Base of defences backed by a pretrained network loaded on first use.

    Subclasses implement :meth:`missing` (what is absent, as user-facing reasons) and
    :meth:`load` (build the model on the CPU; raise :class:`DefenceError` on failure).
    """

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self._model: Any = None

    @classmethod
    def missing(cls, params: Any) -> list[str]:
        """Reasons the defence cannot run with ``params`` (empty when it can)."""
        return []

    @classmethod
    def can_download(cls, params: Any) -> bool:
        """Whether everything missing would be fetched on first use."""
        return False

    @classmethod
    def availability(cls, params: dict[str, Any] | None = None) -> Availability:
        try:
            p = make_params(cls.Params, params or {})
        except ParamError as exc:
            return Availability("unavailable", str(exc))
        reasons = cls.missing(p)
        if not reasons:
            return Availability("ready")
        if cls.can_download(p):
            return Availability("needs-download", "; ".join(reasons))
        return Availability("unavailable", "; ".join(reasons))

    def load(self) -> Any:
        raise NotImplementedError

    @staticmethod
    def move(model: Any, device: torch.device) -> Any:
        return model.to(device)

    @property
    def model(self) -> Any:
        if self._model is None:
            reasons = self.missing(self.params)
            if reasons and not self.can_download(self.params):
                raise DefenceError(f"{self.name} is not available: {'; '.join(reasons)}")
            self._model = self.move(self.load(), self.device)
        return self._model

    def to(self, device: torch.device | str) -> NeuralDefence:
        super().to(device)
        if self._model is not None:
            self._model = self.move(self._model, self.device)
        return self


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize with antialiasing (when shrinking), clamped to [0, 1]."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0.0, 1.0)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the bottom/right so both sides are multiples of ``multiple``; returns
    the padded batch and the original (H, W) to crop back to."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def load_spandrel(path: str, expected: tuple[str, ...], what: str) -> Any:
    """Load a weights file with spandrel and check its architecture.

    Args:
        path: the .pth/.safetensors file.
        expected: spandrel architecture ids that are accepted.
        what: the defence's name, for messages.

    Returns:
        spandrel's ImageModelDescriptor (model on the CPU).
    """
    try:
        from spandrel import ModelLoader
    except ImportError:
        raise DefenceError(f"{what} needs the 'spandrel' package (pip install spandrel)") from None
    from spandrel import canonicalize_state_dict

    from engine.metrics.checkpoints import check_fits

    try:
        loader = ModelLoader()
        state = canonicalize_state_dict(loader.load_state_dict_from_file(path))
        desc = loader.load_from_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - unsupported/corrupt files get one message
        text = " ".join(str(exc).split())  # torch's strict-load error spans lines
        raise DefenceError(f"{what}: cannot load {path}: {type(exc).__name__}: {text[:400]}") from None
    arch = desc.architecture.id
    if arch not in expected:
        raise DefenceError(f"{what}: {path} holds a {desc.architecture.name} model; "
                           f"expected {' or '.join(expected)}")
    # spandrel loads strictly what its architecture passes on; this also refuses a file
    # whose tensors an architecture would drop before loading (the one shared check).
    check_fits(desc.model, state, source=path, who=what, what=f"{desc.architecture.name} model",
               error=DefenceError)
    return desc
