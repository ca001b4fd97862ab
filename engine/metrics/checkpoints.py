"""Load a weights file into a network strictly: every tensor used, none missing, no shape off.

One check for every weights file the lab loads (its own metrics, pyiqa's metrics given a
``weights=FILE``, the purifiers' files): first the known layouts are mapped onto the
network's names (nested ``state_dict``/``model``/``params`` dicts, DataParallel's
``module.`` prefix, per-architecture renames such as MSU's ``net.*`` → pyiqa's ``head.*``
for MetaIQA), then any difference between the file and the network is an error that names
the file and the first offending keys. ``torch``'s ``strict=False`` would instead keep
the network's random values for whatever the file does not name — a silent partial load.

Tolerated (they are not learned): BatchNorm's ``num_batches_tracked`` counters (unused in
eval mode; absent from old files), and buffers that are constants of the architecture
(e.g. pyiqa's ImageNet ``mean``/``std``), which keep the value the architecture sets.
BatchNorm running statistics are learned and must be in the file.

Example:
    >>> state = state_dict_of(read_checkpoint(path), path=path)         # doctest: +SKIP
    >>> load_strict(net, state, source=path, who="spaq")                 # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.metrics.base import MetricError

NESTED_KEYS = ("state_dict", "model", "params", "params_ema", "net")
"""Keys under which checkpoints nest their state dict (authors' and pyiqa's layouts)."""

PREFIXES = ("module.", "net_g.")
"""Wrapper prefixes stripped from every key (DataParallel; BasicSR's generator)."""

_BN_STATS = ("running_mean", "running_var")
SHOW = 3
"""How many offending keys a message names per kind."""


class WeightsMismatch(MetricError):
    """A weights file does not fit the network (a configuration error, exit code 2).

    Attributes:
        source: the file (or description) that was loaded.
        missing, unexpected: key names; ``shapes``: ``(key, file shape, network shape)``.
    """

    def __init__(self, message: str, source: str = "", missing: list[str] | None = None,
                 unexpected: list[str] | None = None,
                 shapes: list[tuple[str, tuple, tuple]] | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.missing = missing or []
        self.unexpected = unexpected or []
        self.shapes = shapes or []


@dataclass
class Mismatch:
    """How a state dict differs from a network's (empty = it fits)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shapes: list[tuple[str, tuple, tuple]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.shapes)

    def describe(self) -> str:
        """``"2 missing (a, b), 1 unexpected (c), 1 of the wrong shape (d: file 3 vs network 4)"``."""
        parts = []
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                more = ", …" if len(keys) > SHOW else ""
                parts.append(f"{len(keys)} {label} ({', '.join(keys[:SHOW])}{more})")
        if self.shapes:
            shown = ", ".join(f"{k}: file {tuple(a)} vs network {tuple(b)}"
                              for k, a, b in self.shapes[:SHOW])
            parts.append(f"{len(self.shapes)} of the wrong shape ({shown}"
                         f"{', …' if len(self.shapes) > SHOW else ''})")
        return ", ".join(parts)


def state_dict_of(obj: Any, *, path: Any = "", who: str = "",
                  prefer: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict a loaded checkpoint holds, unwrapped from the known layouts.

    Args:
        obj: what ``torch.load`` returned.
        path: the file, for messages.
        who: the component's name, for messages.
        prefer: a nesting key to try first (e.g. pyiqa's ``weight_keys='params'``).

    Returns:
        ``{name: tensor}`` with the :data:`PREFIXES` stripped.

    Raises:
        WeightsMismatch: no state dict found.
    """
    keys = ((prefer,) if prefer else ()) + NESTED_KEYS
    for _ in range(3):  # e.g. {'model': {'state_dict': {...}}}
        if not isinstance(obj, Mapping) or _is_state(obj):
            break
        inner = next((obj[k] for k in keys if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not _is_state(obj):
        what = (", ".join(map(str, list(obj)[:6])) if isinstance(obj, Mapping)
                else type(obj).__name__)
        raise WeightsMismatch(f"{_who(who)}{str(path)!r} holds no state dict (found: {what})",
                              str(path))
    return {_strip(str(k)): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _is_state(d: Mapping) -> bool:
    return len(d) > 0 and sum(isinstance(v, torch.Tensor) for v in d.values()) >= len(d) / 2


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p):], True
    return key


def rename_prefixes(state: Mapping[str, torch.Tensor],
                    renames: Iterable[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Rename key prefixes (``[("net.", "head.")]``); only whole leading components."""
    renames = tuple(renames)
    out = {}
    for k, v in state.items():
        for old, new in renames:
            if k.startswith(old):
                k = new + k[len(old):]
                break
        out[k] = v
    return out


def constant_buffers(net: nn.Module) -> set[str]:
    """State-dict names of buffers that are architecture constants (not learned).

    Every buffer except BatchNorm's running statistics: normalisation means, fixed
    filters. ``num_batches_tracked`` is listed too (a counter, unused in eval mode).
    """
    names = set()
    for mod_name, mod in net.named_modules():
        for b_name, _ in mod.named_buffers(recurse=False):
            if b_name in _BN_STATS and isinstance(mod, nn.modules.batchnorm._NormBase):
                continue
            if b_name in mod._non_persistent_buffers_set:
                continue
            names.add(f"{mod_name}.{b_name}" if mod_name else b_name)
    return names


def compare(net: nn.Module, state: Mapping[str, torch.Tensor]) -> Mismatch:
    """How ``state`` differs from ``net.state_dict()`` (constants may be absent)."""
    own = net.state_dict()
    tolerated = constant_buffers(net)
    m = Mismatch()
    m.missing = [k for k in own if k not in state and k not in tolerated]
    m.unexpected = [k for k in state if k not in own]
    m.shapes = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
                if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    return m


def check_fits(net: nn.Module, state: Mapping[str, torch.Tensor], *, source: Any,
               who: str = "", what: str = "", error: type[Exception] = WeightsMismatch) -> None:
    """Raise unless ``state`` fits ``net`` exactly (constants may be absent); loads nothing.

    Args:
        net: the network.
        state: the mapped state dict (see :func:`state_dict_of`, :func:`rename_prefixes`).
        source: the file, named in the message.
        who: the component's name (message prefix).
        what: the architecture's name (message), e.g. ``"pyiqa's MetaIQA"``.
        error: the exception class raised (:class:`WeightsMismatch` for metrics; the
            purifiers pass their ``DefenceError``).

    Raises:
        error: with one line naming the file and the first offending keys.
    """
    m = compare(net, state)
    if not m:
        return
    target = f" {what}" if what else " network"
    msg = (f"{_who(who)}weights file {str(source)!r} does not fit the{target}: "
           f"{m.describe()}; nothing was loaded")
    if error is WeightsMismatch:
        raise WeightsMismatch(msg, str(source), m.missing, m.unexpected, m.shapes)
    raise error(msg)


def load_strict(net: nn.Module, state: Mapping[str, torch.Tensor], *, source: Any,
                who: str = "", what: str = "", error: type[Exception] = WeightsMismatch) -> None:
    """:func:`check_fits`, then load ``state`` into ``net`` (its random values replaced)."""
    check_fits(net, state, source=source, who=who, what=what, error=error)
    # strict=False only for the tolerated constants; everything else was checked above.
    net.load_state_dict(dict(state), strict=False)


def load_file_strict(net: nn.Module, path: str | Path, *, who: str = "", what: str = "",
                     renames: Iterable[tuple[str, str]] = (), prefer: str | None = None) -> None:
    """Read ``path`` (:func:`~engine.metrics.weights.read_checkpoint`), map, load strictly."""
    from engine.metrics.weights import read_checkpoint

    state = state_dict_of(read_checkpoint(path, metric=who), path=path, who=who, prefer=prefer)
    load_strict(net, rename_prefixes(state, renames), source=path, who=who, what=what)


def _who(who: str) -> str:
    return f"{who}: " if who else ""
