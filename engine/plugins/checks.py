"""What a plug-in's component must be, checked when it is loaded.

A component is refused (its file and line in the message) when it is not a subclass of
the right base class, does not implement its method, takes a metric name of pyiqa's, or
has a parameter without a default or a preset that its parameters refuse. Its outputs
(shape, finite values, gradient) are checked while it runs, by the base classes
(:func:`engine.metrics.base.check_plugin_scores` and friends).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from engine.plugins.errors import PluginError


def defined_at(obj: Any) -> str:
    """:func:`engine.metrics.base.defined_at` (imported when needed: loading no plug-in
    imports no torch)."""
    from engine.metrics.base import defined_at as at

    return at(obj)


def check_component(kind: str, name: str, cls: type) -> None:
    """Raise :class:`PluginError` when ``cls`` (registered as ``name``) cannot be a ``kind``."""
    from engine.api import Attack, Defence, Metric

    base, method = {"metric": (Metric, "forward"), "attack": (Attack, "run"),
                    "defence": (Defence, "forward")}[kind]
    at = defined_at(cls)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise PluginError(f"plug-in {at}: {kind} {name!r} is not a subclass of engine.api.{base.__name__}")
    if getattr(cls, method) is getattr(base, method):
        raise PluginError(f"plug-in {at}: {kind} {name!r} does not implement {method}()")
    if kind == "metric":
        _check_metric_name(name, at)
    params = getattr(cls, "Params", None)
    if params is not None:
        _check_params(kind, name, params)
        for label, values in (getattr(cls, "presets", None) or {}).items():
            _check_preset(kind, name, params, label, values, at)


def _check_metric_name(name: str, at: str) -> None:
    from engine.metrics import ALIASES, pyiqa_catalog

    if name in pyiqa_catalog.nr_names() or name.lower() in ALIASES:
        raise PluginError(f"plug-in {at}: metric {name!r} already exists (a pyiqa metric); choose another name")


def _check_params(kind: str, name: str, params: type) -> None:
    if not dataclasses.is_dataclass(params):
        raise PluginError(f"plug-in {defined_at(params)}: {kind} {name!r}: Params must be a @dataclass "
                          "whose fields are made with engine.api.param(default, ...)")
    for f in dataclasses.fields(params):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise PluginError(f"plug-in {defined_at(params)}: {kind} {name!r}: parameter {f.name!r} has no "
                              f"default (every parameter needs one: {f.name}: ... = param(DEFAULT, ...))")


def _check_preset(kind: str, name: str, params: type, label: str, values: dict, at: str) -> None:
    from engine.api import ParamError
    from engine.spec.params import make_params

    try:
        make_params(params, values)
    except ParamError as exc:
        raise PluginError(f"plug-in {at}: {kind} {name!r}: preset {label!r}: {exc}") from None
