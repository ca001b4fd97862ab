"""Images of finished items for the inspector: a bounded in-memory cache, then the store's PNGs."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from gui.inspector import InspectorImages


def read_rgb(path: str | Path) -> np.ndarray | None:
    """A PNG/JPEG as uint8 H×W×3, or None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")).copy()
    except Exception:  # noqa: BLE001 - a missing/corrupt file just isn't shown
        return None


class ImageCache:
    """item_id → :class:`InspectorImages`, least recently used dropped beyond ``capacity``."""

    def __init__(self, capacity: int = 48) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, InspectorImages] = OrderedDict()

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item_id: str, images: InspectorImages) -> None:
        self._items[item_id] = images
        self._items.move_to_end(item_id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, item_id: str) -> InspectorImages | None:
        im = self._items.get(item_id)
        if im is not None:
            self._items.move_to_end(item_id)
        return im

    def clear(self) -> None:
        self._items.clear()


def from_event_images(title: str, images: Any, note: str = "") -> InspectorImages:
    """Adapt :class:`engine.core.events.ItemImages`."""
    return InspectorImages(title, images.clean, images.attacked, dict(images.defended_clean),
                           dict(images.defended_attacked), note)


def from_store(store: Any, exp_id: str, item: dict[str, Any], defence_labels: list[str], title: str
               ) -> InspectorImages:
    """Images of a stored item from its saved PNGs; the clean image falls back to the
    original file when the run did not save images."""
    clean = read_rgb(store.image_path(exp_id, item["item_id"], "clean"))
    attacked = read_rgb(store.image_path(exp_id, item["item_id"], "attacked"))
    dc: dict[str, np.ndarray] = {}
    da: dict[str, np.ndarray] = {}
    for label in defence_labels:
        a = read_rgb(store.image_path(exp_id, item["item_id"], "defended-attacked", label))
        if a is not None:
            da[label] = a
        c = read_rgb(store.image_path(exp_id, item["item_id"], "defended-clean", label))
        if c is not None:
            dc[label] = c
    note = ""
    if clean is None:
        clean = read_rgb(item.get("image", ""))
    if attacked is None:
        note = "attacked/defended images were not saved in this run (tick 'save images')"
    return InspectorImages(title, clean, attacked, dc, da, note)
