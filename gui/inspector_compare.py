"""The inspector's compare modes: the attacked view blinking or swiped against the clean
one, and a region box with statistics of the difference inside it.

:class:`CompareModes` is mixed into :class:`gui.inspector.Inspector`; it uses the
inspector's widgets (``compare``, ``swipe_line``, ``roi``, ``region``…) and images.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Slot

from gui.image_ops import region_stats, swipe
from gui.inspector_views import TITLE_STYLE


class CompareModes:
    """Blink, swipe and region of :class:`gui.inspector.Inspector`."""

    def attacked_view(self) -> np.ndarray | None:
        """What the attacked view shows in the current compare mode."""
        im = self.images
        if im is None:
            return None
        mode = self.compare.currentData()
        if mode == "blink" and self.blink_shows_clean:
            return im.clean
        if mode == "swipe" and im.clean is not None and im.attacked is not None \
                and im.clean.shape == im.attacked.shape:
            return swipe(im.clean, im.attacked, self.swipe_fraction)
        return im.attacked

    def _attacked_title(self) -> None:
        """The attacked view's title says what it shows in the current compare mode."""
        mode = self.compare.currentData()
        text = {"blink": "clean x (blink)" if self.blink_shows_clean else "attacked xₐ (blink)",
                "swipe": "clean x | attacked xₐ (drag to swipe)"}.get(mode, "attacked xₐ")
        self.plots["attacked"].setTitle(text, **TITLE_STYLE)

    def set_swipe(self, fraction: float) -> None:
        """Put the swipe divider at ``fraction`` of the image width (0 … 1)."""
        self.swipe_fraction = max(0.0, min(1.0, float(fraction)))
        shape = self._shape()
        if shape is not None:
            self.swipe_line.setValue(self.swipe_fraction * shape[1])
        if self.compare.currentData() == "swipe":
            self._set("attacked", self.attacked_view())

    def _on_swipe_drag(self, x: float) -> None:
        shape = self._shape()
        if shape is not None:
            self.set_swipe(x / max(1, shape[1]))

    def _on_compare(self, *_: object) -> None:
        mode = self.compare.currentData()
        swiping = mode == "swipe"
        self.plots["attacked"].vb.on_swipe = self._on_swipe_drag if swiping else None
        self.swipe_line.setVisible(swiping)
        if swiping:
            self.set_swipe(self.swipe_fraction)
        self.blink_shows_clean = False
        if mode == "blink":
            self.blink_timer.start()
        else:
            self.blink_timer.stop()
        self._refresh()

    @Slot()
    def blink_step(self) -> None:
        """Toggle the attacked view between the clean and the attacked image."""
        self.blink_shows_clean = not self.blink_shows_clean
        self._set("attacked", self.attacked_view())
        self._attacked_title()

    def _on_region_toggled(self, on: bool) -> None:
        im = self.images
        if on and im is not None and im.clean is not None:
            h, w = im.clean.shape[:2]
            self.roi.setPos((w // 4, h // 4))
            self.roi.setSize((max(1, w // 2), max(1, h // 2)))
        self.roi.setVisible(on)
        self.region.setVisible(on)
        self._update_region()

    def set_region(self, x: int, y: int, w: int, h: int) -> None:
        """Put the region box at pixel (x, y), w × h (shown and switched on)."""
        self.region_button.setChecked(True)
        self.roi.setPos((x, y))
        self.roi.setSize((w, h))
        self._update_region()

    def region_stats(self) -> dict[str, float] | None:
        """Statistics of attacked (or defended, per the difference mode) − clean in the box."""
        im = self.images
        if im is None or im.clean is None or not self.region_button.isChecked():
            return None
        other = self._defended() if str(self.mode.currentData()).endswith("defended") else im.attacked
        if other is None or other.shape != im.clean.shape:
            return None
        (x, y), (w, h) = self.roi.pos(), self.roi.size()
        return region_stats(im.clean, other, round(x), round(y), round(x + w), round(y + h))

    def _update_region(self, *_: object) -> None:
        st = self.region_stats()
        if st is None:
            self.region.setText("region: no difference to measure" if self.region_button.isChecked() else "")
            return
        self.region.setText(f"region {st['pixels']} px: mean |Δ| {st['mean_abs']:.2f}/255 · max |Δ| "
                            f"{st['max_abs']:.0f}/255 · mean Δ {st['mean']:+.2f}/255 · PSNR {st['psnr']:.1f} dB")

