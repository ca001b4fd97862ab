"""Defence (purification) protocol: a map from a batch to a batch.

A defence declares typed parameters (MSU default), presets (the five MSU values of its
main parameter), whether it is differentiable (gradients flow through it; otherwise an
adaptive attack uses BPDA) and whether it is random. A random defence draws everything
from the ``seed`` it is given, so ``d(x, seed=s)`` and ``d(x_adv, seed=s)`` get the same
transform: the runner passes one seed per item to both.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from engine.metrics.base import Availability, PluginOutputError, check_image_batch, defined_at
from engine.spec.params import make_params, param_specs, params_to_dict
from engine.spec.registry import Registry


class DefenceError(RuntimeError):
    """A defence could not be built or applied (message is user-facing)."""


class Defence:
    """Base class. Subclasses set ``Params``, ``presets``, ``differentiable``, ``random``
    and implement :meth:`forward`.

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1].
        - Output: :math:`(B, 3, H', W')` in [0, 1]; most defences keep the size, random
          crop does not.
    """

    name: ClassVar[str] = "defence"
    Params: ClassVar[type] = None  # type: ignore[assignment]
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    differentiable: ClassVar[bool] = True
    random: ClassVar[bool] = False
    #: changes the geometry (flip, crop, rotate): quality vs the clean image is then
    #: reported beside a geometry-aware quality (D(x) vs D(x_a))
    geometric: ClassVar[bool] = False
    #: returns its input unchanged (``none``): the runner reuses x, x_a and their scores
    identity: ClassVar[bool] = False
    #: applied image by image inside a batch, because its batched kernels round
    #: differently from one image (so a batched run's rows equal batch 1's bit for bit)
    split_batch: ClassVar[bool] = False
    #: presets that reproduce MSU's published defence code numerically (checked against an
    #: independent re-derivation in the tests): label → the reference file, under
    #: github.com/msu-video-group; the GUI tags them "(MSU code)"
    literal_presets: ClassVar[dict[str, str]] = {}
    #: set by the plug-in loader: a plug-in defence's outputs are checked (shape, finite)
    plugin: ClassVar[str | None] = None

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        from engine.spec.params import NoParams
        cls_params = self.Params or NoParams
        if params is None or isinstance(params, dict):
            params = make_params(cls_params, {**(params or {}), **overrides})
        elif overrides:
            params = make_params(cls_params, {**params_to_dict(params), **overrides})
        self.params = params
        self.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> "Defence":
        """Move any model the defence holds; classical defences just remember the device."""
        self.device = torch.device(device)
        return self

    @classmethod
    def from_preset(cls, label: str, **overrides: Any) -> "Defence":
        if label not in cls.presets:
            raise KeyError(f"{cls.name}: unknown preset {label!r}; known: {', '.join(cls.presets)}")
        return cls({**cls.presets[label], **overrides})

    @classmethod
    def param_specs(cls):
        from engine.spec.params import NoParams
        return param_specs(cls.Params or NoParams)

    @classmethod
    def availability(cls, params: dict[str, Any] | None = None) -> Availability:
        """Ready unless the defence needs weights or packages that are missing.

        Args:
            params: the parameters it would run with (a checkpoint path can make it ready).
        """
        return Availability("ready")

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, seed: int | Sequence[int] | None = None) -> torch.Tensor:
        """Apply the defence.

        Args:
            x: :math:`(B, 3, H, W)` in [0, 1].
            seed: the per-item seed; random defences make all their draws from a CPU
                ``torch.Generator`` seeded with it (same seed → same transform on any
                device). A batch of several items gives one seed per image: each image
                then gets the draw it gets alone. Ignored by deterministic defences.
        """
        check_image_batch(x)
        seeds = list(seed) if isinstance(seed, Sequence) else None
        if seeds is not None and len(seeds) != x.shape[0]:
            raise ValueError(f"{self.name}: {len(seeds)} seeds for a batch of {x.shape[0]} images")
        if x.shape[0] > 1 and (self.split_batch or (self.random and seeds is not None)):
            return torch.cat([self(x[i:i + 1], None if seeds is None else seeds[i])
                              for i in range(x.shape[0])])
        if seeds is not None:
            seed = seeds[0]
        gen = None
        if self.random:
            gen = torch.Generator().manual_seed(int(seed if seed is not None else 0))
        out = self.forward(x, gen)
        if self.plugin is not None:
            _check_plugin_output(self, x, out)
        return out.clamp(0.0, 1.0) if self.clamps_output else out

    @property
    def clamps_output(self) -> bool:
        """Whether the output is clamped to [0, 1] (all defences, unless a parameter asks
        for the raw output, as MSU's Real-ESRGAN returns it)."""
        return True


def _check_plugin_output(defence: Defence, x: torch.Tensor, out: Any) -> None:
    """A plug-in defence returns a finite :math:`(B, 3, H', W')` batch."""
    where = f"{defined_at(type(defence).forward)}: defence {defence.name!r} ({defence.plugin})"
    if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[:2] != x.shape[:2]:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise PluginOutputError(f"{where} returned {shape} for an input of {tuple(x.shape)}; "
                                f"forward must return a ({x.shape[0]}, 3, H, W) batch")
    if not bool(torch.isfinite(out.detach()).all()):
        raise PluginOutputError(f"{where} returned pixels that are not finite (NaN or inf)")


DEFENCES: Registry[Defence] = Registry("defence")


def sweep(name: str, values: list[Any], fmt: str = "{}", **fixed: Any) -> dict[str, dict[str, Any]]:
    """Presets that sweep one parameter: label ``name=value`` → overrides."""
    return {f"{name}={fmt.format(v)}": {name: v, **fixed} for v in values}


#: the repository MSU's defence code lives in (reference files are named under it)
MSU_DEFENCES = "adversarial-defenses-for-iqa/metrics/defences"
#: label prefix of the presets that reproduce MSU's defence code
MSU_LITERAL = "msu-literal"


def msu_sweep(name: str, values: list[Any], fmt: str = "{}", **fixed: Any) -> dict[str, dict[str, Any]]:
    """MSU's five presets of one parameter, each with the overrides that reproduce MSU's
    code: label ``msu-literal name=value``."""
    return {f"{MSU_LITERAL} {name}={fmt.format(v)}": {name: v, **fixed} for v in values}


def msu_reference(defence_dir: str, presets: dict[str, dict[str, Any]]) -> dict[str, str]:
    """``literal_presets`` of a defence's ``presets``: each ``msu-literal…`` label → MSU's
    ``<defence_dir>/run.py``."""
    return {label: f"{MSU_DEFENCES}/{defence_dir}/run.py" for label in presets if label.startswith(MSU_LITERAL)}
