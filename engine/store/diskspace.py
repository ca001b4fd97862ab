"""Will the images of a run fit? An estimate from the images' sizes, before the run.

A run with ``save_images`` writes, per item, the clean and attacked image and both
defended versions per defence as PNG. Their size is estimated from each source image's
pixel count (read from its header) at :data:`PNG_BYTES_PER_PIXEL`. A run with
``keep_attacked`` writes, per item that runs its attack, an exact float copy of x_a
(:mod:`engine.store.attacked`): :data:`FLOAT_COPY_BYTES_PER_PIXEL` and
:data:`FLOAT_COPY_OVERHEAD`, exactly.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from engine.core.errors import human_bytes

if TYPE_CHECKING:
    from engine.spec.experiment import Experiment
    from engine.store.db import ResultStore

#: bytes per pixel of an 8-bit RGB PNG of a photo (raw is 3; photos compress to ~1.5-2.5)
PNG_BYTES_PER_PIXEL = 2.5
#: store bytes per row (JSON of one defence's numbers)
ROW_BYTES = 2048
#: bytes per pixel of a kept float copy of x_a (3 channels × float32)
FLOAT_COPY_BYTES_PER_PIXEL = 12
#: the copy's numpy header (128 bytes) and its JSON record (about 250 bytes)
FLOAT_COPY_OVERHEAD = 400


def _pixels(path: str) -> int:
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
        return w * h
    except Exception:  # noqa: BLE001 - an unreadable image fails as its item, costs nothing
        return 0


def estimate_bytes(exp: "Experiment", done: set[str] | None = None, items: list | None = None) -> int:
    """Bytes the pending items of ``exp`` will write (images when saved, float copies of
    x_a when kept, and store rows); ``items``: the pending items when known (ids by
    content, see engine.run.identity; an item that replays a stored attack writes no copy)."""
    pixels: dict[str, int] = {}
    total = 0
    for item in exp.items() if items is None else items:
        if done and item.id in done:
            continue
        n_rows = len(item.defences)
        total += n_rows * ROW_BYTES
        if item.image not in pixels and (exp.save_images or exp.keep_attacked):
            pixels[item.image] = _pixels(item.image)
        if exp.save_images:
            total += int(pixels[item.image] * PNG_BYTES_PER_PIXEL) * (2 + 2 * n_rows)
        if exp.keep_attacked and getattr(item, "replay", None) is None:
            total += pixels[item.image] * FLOAT_COPY_BYTES_PER_PIXEL + FLOAT_COPY_OVERHEAD
    return total


def space_warning(exp: "Experiment", store: "ResultStore", pending: list | None = None) -> str | None:
    """A warning when the pending work of ``exp`` (``pending`` items when known) will not
    fit next to ``store``; else None."""
    need = estimate_bytes(exp, None, pending) if pending is not None else estimate_bytes(exp, store.done_item_ids(exp.id))
    folder = Path(store.path).parent
    free = shutil.disk_usage(folder).free
    if need <= free:
        return None
    options = (("--save-images", exp.save_images), ("--keep-attacked", exp.keep_attacked))
    drop = " or ".join(name for name, on in options if on) or "--save-images"
    return (f"the run needs about {human_bytes(need)} in {folder} (images and results) but only "
            f"{human_bytes(free)} is free; it will stop cleanly when the disk is full — free space "
            f"or drop {drop}")
