"""Chain: several defences applied one after the other, itself a defence (e.g. DiffPure
then unsharp masking, which the paper found a good pair).

Steps are written as a comma-separated list of component specs, each in the CLI form
``name``, ``name[preset]`` or ``name:k=v:k=v``, e.g. ``"gaussian-blur:kernel_size=3,unsharp"``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from engine.defences.base import DEFENCES, Defence, DefenceError
from engine.metrics.base import Availability
from engine.spec.params import ParamError, param


@dataclass
class ChainParams:
    steps: str = param("median-blur,unsharp",
                       help="defences in order, comma-separated: name, name[preset] or name:k=v:k=v")


def split_steps(text: str) -> list[str]:
    """Split on the commas that are not inside a ``[preset]``."""
    items, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return [s.strip() for s in items]


def _step_params(cls: type[Defence], spec: Any) -> dict[str, Any]:
    """The parameters a step would run with: its preset's overrides, then its own."""
    return {**cls.presets.get(spec.preset or "", {}), **spec.params}


def build_step(text: str, what: str = "chain step") -> Defence:
    """Build one step from its spec text; any problem is a :class:`ParamError` naming it.

    Args:
        text: ``name``, ``name[preset]`` or ``name:k=v:k=v``.
        what: how messages name the step (``chain step``, ``denoiser`` …).
    """
    from engine.spec.experiment import ComponentSpec

    try:
        spec = ComponentSpec.parse(text)
    except ValueError as exc:
        raise ParamError(f"{what} {text!r}: {exc}") from exc
    if spec.name == "chain" and what == "chain step":
        raise ParamError("a chain cannot contain another chain; list its steps instead")
    if spec.name not in DEFENCES:
        raise ParamError(f"{what} {text!r}: unknown defence {spec.name!r}; "
                         f"known: {', '.join(n for n in DEFENCES.names() if n != 'chain')}")
    cls = DEFENCES.get(spec.name)
    avail = cls.availability(_step_params(cls, spec))
    if avail.state == "unavailable":  # needs-download is fine: fetched on first use
        raise DefenceError(f"{what} {spec.name!r} is not available: {avail.reason}")
    try:
        if spec.preset is not None:
            return cls.from_preset(spec.preset, **spec.params)
        return cls(spec.params)
    except KeyError as exc:  # unknown preset
        raise ParamError(f"{what} {text!r}: {exc.args[0]}") from exc
    except ParamError as exc:
        raise ParamError(f"{what} {text!r}: {exc}") from exc


@DEFENCES.register("chain")
class Chain(Defence):
    """Apply defences in order: ``D_n(… D_2(D_1(x)))``.

    The instance's flags come from its steps: differentiable iff every step is, random
    iff any step is, geometric iff any step is (the class-level flags describe the
    default chain). Step i gets its own seed, drawn in order from the chain's seed, so
    ``chain(x, seed=s)`` and ``chain(x_adv, seed=s)`` make the same draws at every step.

    Args:
        steps: comma-separated step specs (default ``median-blur,unsharp``).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1]. Output: whatever the last step gives
          (each step's output is clamped to [0, 1]).

    Example:
        >>> d = Chain(steps="gaussian-blur:kernel_size=5,unsharp")
        >>> [s.name for s in d.steps]
        ['gaussian-blur', 'unsharp']
    """

    Params = ChainParams
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "diffpure+unsharp": {"steps": "diffpure,unsharp"},
        "median+unsharp": {"steps": "median-blur,unsharp"},
        "jpeg+unsharp": {"steps": "jpeg,unsharp"},
        "resize+unsharp": {"steps": "resize,unsharp"},
    }
    differentiable = True
    random = False

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        texts = split_steps(self.params.steps)
        if not any(texts) or not all(texts):
            raise ParamError(f"parameter 'steps' = {self.params.steps!r}: give one or more "
                             "defences separated by commas, with no empty item")
        self.steps: list[Defence] = [build_step(t) for t in texts]
        self.differentiable = all(s.differentiable for s in self.steps)
        self.random = any(s.random for s in self.steps)
        self.geometric = any(getattr(s, "geometric", False) for s in self.steps)

    @classmethod
    def availability(cls, params: dict[str, Any] | None = None) -> Availability:
        """Unavailable when a step is (e.g. a neural purifier without its weights) or the
        steps cannot be parsed; the reason names the step."""
        try:
            cls(params or {})
        except (DefenceError, ParamError) as exc:
            return Availability("unavailable", str(exc))
        return Availability("ready")

    def to(self, device: torch.device | str) -> Chain:
        super().to(device)
        for s in self.steps:
            s.to(device)
        return self

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        for step in self.steps:
            seed = None
            if generator is not None:
                seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            x = step(x, seed=seed)
        return x
