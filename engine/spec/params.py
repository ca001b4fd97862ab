"""Typed, serialisable parameters for metrics, attacks and defences.

Every configurable component declares a ``@dataclass`` of parameters whose fields are
made with :func:`param`. The metadata (help text, bounds, choices, unit) is what the CLI,
``main.py list`` and the GUI's parameter editors are built from, so a new component gets
a working editor without any GUI code.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from engine.core.errors import ExpectedError


def param(
    default: Any,
    *,
    help: str = "",
    min: float | None = None,
    max: float | None = None,
    choices: typing.Sequence[Any] | None = None,
    unit: str = "",
    step: float | None = None,
) -> Any:
    """Declare one parameter field with the metadata the editors and listings need.

    Args:
        default: the MSU default value.
        help: one line for tooltips and ``main.py list``.
        min, max: inclusive numeric bounds, checked on construction.
        choices: allowed values for string/enum-like parameters.
        unit: display unit, e.g. ``"/255"``.
        step: suggested editor step.
    """
    meta = {"help": help, "min": min, "max": max, "choices": tuple(choices) if choices else None,
            "unit": unit, "step": step}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ParamSpec:
    """A read-only description of one parameter (for editors and listings)."""

    name: str
    type: type
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    unit: str = ""
    step: float | None = None


class ParamError(ExpectedError, ValueError):
    """A parameter value is of the wrong type, out of bounds, or unknown."""


def _resolved_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def param_specs(cls: type) -> list[ParamSpec]:
    """List the parameters of a parameter dataclass ``cls`` in declaration order."""
    hints = _resolved_types(cls)
    specs = []
    for f in fields(cls):
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else None)  # type: ignore[misc]
        m = f.metadata
        specs.append(ParamSpec(f.name, _base_type(hints[f.name]), default, m.get("help", ""),
                               m.get("min"), m.get("max"), m.get("choices"), m.get("unit", ""),
                               m.get("step")))
    return specs


def _base_type(t: Any) -> type:
    """Reduce ``Optional[X]``/``X | None`` to ``X`` for coercion."""
    args = typing.get_args(t)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else str
    return t if isinstance(t, type) else str


def _coerce(spec: ParamSpec, value: Any) -> Any:
    if value is None:
        return None
    t = spec.type
    try:
        if t is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if t is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if t is float:
            v = float(value)
            if not math.isfinite(v):  # NaN passes every range check; ±inf is no strength
                raise ParamError(f"parameter {spec.name!r} = {value!r}: expected a finite number")
            return v
        if t is str:
            return str(value)
    except ParamError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise ParamError(f"parameter {spec.name!r}: cannot read {value!r} as {t.__name__}") from exc
    return value


def make_params(cls: type, values: dict[str, Any] | None = None) -> Any:
    """Build a parameter dataclass from a (possibly partial, possibly string-valued) dict.

    Unknown names, wrong types and out-of-range values raise :class:`ParamError` naming
    the parameter.
    """
    values = dict(values or {})
    specs = {s.name: s for s in param_specs(cls)}
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ParamError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(specs)}")
    kwargs = {}
    for name, raw in values.items():
        spec = specs[name]
        v = _coerce(spec, raw)
        if v is not None and spec.type in (int, float):
            if spec.min is not None and v < spec.min:
                raise ParamError(f"parameter {name!r} = {v} is below its minimum {spec.min}")
            if spec.max is not None and v > spec.max:
                raise ParamError(f"parameter {name!r} = {v} is above its maximum {spec.max}")
        if spec.choices is not None and v not in spec.choices:
            raise ParamError(f"parameter {name!r} = {v!r} is not one of {list(spec.choices)}")
        kwargs[name] = v
    return cls(**kwargs)


def params_to_dict(params: Any) -> dict[str, Any]:
    """The JSON-serialisable dict of a parameter dataclass instance."""
    return dataclasses.asdict(params) if params is not None else {}


@dataclass
class NoParams:
    """For components without parameters."""
