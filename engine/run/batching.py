"""Which items may share a batch, and how large a batch may be.

Items that share metric, attack, target defence, defences and image size can run as one
B×3×H×W batch (:func:`engine.run.compute.run_unit`); everything per image stays per image,
so a batched run's rows equal batch 1's. :func:`plan_units` groups pending items into
such units of at most ``Experiment.batch_size`` items (``"auto"``: up to
:data:`AUTO_MAX` on CUDA, 1 on the CPU); :func:`batch_limit` is how many of a unit run
at once on a given runtime (an out-of-memory halves it, remembered per metric and size).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Hashable

import torch

if TYPE_CHECKING:
    from engine.spec.experiment import ComponentSpec, Experiment, WorkItem
    from engine.run.runtime import Runtime

#: the most items an ``auto`` unit holds on CUDA (then halved on out-of-memory)
AUTO_MAX = 32


def parse_batch_size(value: Any) -> int | str:
    """``"auto"`` or an integer ≥ 1 (as typed on the command line or stored in a spec).

    Raises:
        ValueError: anything else, with a message saying what is allowed.
    """
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        n = int(value)
        if isinstance(value, float) and n != value:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"batch size {value!r} is not a whole number or 'auto'") from None
    if n < 1:
        raise ValueError(f"batch size {n} must be at least 1 (or 'auto')")
    return n


def planned_batch_size(exp: "Experiment") -> int:
    """The most items one unit of ``exp`` holds: its ``batch_size``; ``auto`` means
    :data:`AUTO_MAX` on CUDA and 1 on the CPU."""
    size = parse_batch_size(exp.batch_size)
    if size != "auto":
        return int(size)
    from engine.run.runtime import DeviceError, resolve_device

    try:
        return AUTO_MAX if resolve_device(exp.device).type == "cuda" else 1
    except DeviceError:
        return 1


def header_size(path: str) -> tuple[int, int] | None:
    """(width, height) of an image as it will be loaded (EXIF rotation applied), from
    its header only; ``None`` when it cannot be read (the load then reports why)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            try:
                rotated = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # 90°: sides swap
            except Exception:  # noqa: BLE001 - a damaged file fails at load, in its batch
                rotated = False
            return (int(h), int(w)) if rotated else (int(w), int(h))
    except Exception:  # noqa: BLE001 - any unreadable file runs alone and fails at load
        return None


def metric_batch_safe(spec: "ComponentSpec") -> bool:
    """Whether the metric's scores are per image inside a batch (catalogue flag, read
    without building the metric); unknown metrics are treated as not batch safe."""
    from engine.metrics import METRICS, canonical_name, pyiqa_catalog

    try:
        key = canonical_name(spec.name)
        if key in METRICS:
            return bool(METRICS.get(key).batch_safe)
        return pyiqa_catalog.entry(key).batch_safe
    except Exception:  # noqa: BLE001 - it fails later, alone, with its own message
        return False


def attack_batchable(spec: "ComponentSpec") -> bool:
    """Whether the attack gives each image of a batch what it gives it alone
    (``Attack.batchable``); unknown attacks run alone (and fail with their own message)."""
    from engine.attacks import ATTACKS

    try:
        return bool(ATTACKS.get(spec.name).batchable)
    except Exception:  # noqa: BLE001
        return False


def unit_key(item: "WorkItem", size: Hashable) -> tuple:
    """What items must share to run as one batch (a replayed stored attack runs with
    replayed ones only)."""
    target = item.target_defence.key if item.target_defence is not None else None
    return (item.metric.key, item.attack.key, target, tuple(d.key for d in item.defences), size,
            item.replay is not None)


def plan_units(pending: list["WorkItem"], exp: "Experiment") -> list[list["WorkItem"]]:
    """Group pending items into units (batches) of compatible items, in order.

    A unit holds items of one metric, attack, target defence, defence list and image
    size (read once per file from its header), at most :func:`planned_batch_size` of
    them; units come in the order of their first item. A metric that is not batch safe,
    an attack that is not batchable, or an image whose header cannot be read, gets units
    of one item.
    """
    size = planned_batch_size(exp)
    if size <= 1:
        return [[item] for item in pending]
    sizes: dict[str, tuple[int, int] | None] = {}
    safe: dict[str, bool] = {}
    batchable: dict[str, bool] = {}
    open_units: dict[tuple, list["WorkItem"]] = {}
    units: list[list["WorkItem"]] = []
    for item in pending:
        if item.metric.key not in safe:
            safe[item.metric.key] = metric_batch_safe(item.metric)
        if item.image not in sizes:
            sizes[item.image] = header_size(item.image)
        if item.attack.key not in batchable:
            batchable[item.attack.key] = attack_batchable(item.attack)
        if not safe[item.metric.key] or not batchable[item.attack.key] or sizes[item.image] is None:
            units.append([item])
            continue
        key = unit_key(item, sizes[item.image])
        unit = open_units.get(key)
        if unit is None or len(unit) >= size:
            unit = open_units[key] = []
            units.append(unit)
        unit.append(item)
    return units


def limit_key(item: "WorkItem", shape: tuple[int, ...]) -> tuple:
    """The key batch limits are remembered under: metric and image size."""
    return (item.metric.key, tuple(shape[-2:]))


def batch_limit(runtime: "Runtime", exp: "Experiment", item: "WorkItem",
                shape: tuple[int, ...], n: int) -> int:
    """How many of ``n`` compatible items run at once on ``runtime``: the batch size
    (``auto``: all of them on CUDA, one on the CPU), capped by any limit an
    out-of-memory taught for this metric and size."""
    size = parse_batch_size(exp.batch_size)
    if size == "auto":
        size = n if runtime.device.type == "cuda" else 1
    learned = runtime.batch_limits.get(limit_key(item, shape))
    return max(1, min(n, int(size), learned or n))


def remember_oom(runtime: "Runtime", item: "WorkItem", shape: tuple[int, ...], tried: int) -> int:
    """Halve the batch after an out-of-memory at ``tried`` items; returns the new limit."""
    limit = max(1, tried // 2)
    runtime.batch_limits[limit_key(item, shape)] = limit
    if runtime.device.type == "cuda":
        torch.cuda.empty_cache()
    return limit


def is_oom(exc: BaseException | None) -> bool:
    """An out-of-memory error (CUDA's, or the CPU allocator's), also when wrapped as the
    cause of an item's error."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, torch.OutOfMemoryError) or (
                isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
