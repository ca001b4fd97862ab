"""The inspector's pixel read-out and what it hands to export: the values under the
cursor in every view, the difference shown, every image shown.

:class:`ReadoutAndExport` is mixed into :class:`gui.inspector.Inspector`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF


class ReadoutAndExport:
    """Read-out and shown arrays of :class:`gui.inspector.Inspector`."""

    def _on_mouse(self, pos: QPointF) -> None:
        for plot in self.plots.values():
            if plot.sceneBoundingRect().contains(pos):
                p = plot.vb.mapSceneToView(pos)
                x, y = int(np.floor(p.x())), int(np.floor(p.y()))
                shape = self._shape()
                if shape is None or not (0 <= x < shape[1] and 0 <= y < shape[0]):
                    self.readout.setText("outside the image")
                else:
                    self.readout.setText(self.pixel_text(x, y))
                return

    def pixel_text(self, x: int, y: int) -> str:
        """The read-out for pixel (x, y) in every view that has it (Δ once the difference
        views have arrived: a mouse move never computes them)."""
        im = self.images
        if im is None:
            return ""
        parts = [f"x={x:<4d} y={y:<4d}"]

        def rgb(name: str, arr: np.ndarray | None) -> None:
            if arr is not None and 0 <= y < arr.shape[0] and 0 <= x < arr.shape[1]:
                r, g, b = (int(v) for v in arr[y, x, :3])
                parts.append(f"{name} ({r:3d},{g:3d},{b:3d})")

        rgb("clean", im.clean)
        rgb("attacked", im.attacked)
        rgb("defended", self._defended())
        d = self._diff_signed
        if d is not None and 0 <= y < d.shape[0] and 0 <= x < d.shape[1]:
            parts.append(f"Δ {d[y, x]:+.2f}/255")
        return "  ".join(parts)

    # ---- for tests and export ------------------------------------------------------------
    def difference(self) -> np.ndarray | None:
        """The signed difference currently shown (H×W, units of 1/255)."""
        self._refresh_diff()
        return self._diff_signed

    def shown_arrays(self) -> dict[str, np.ndarray]:
        """Every image currently shown, by view name (for "Save images")."""
        out: dict[str, np.ndarray] = {}
        self._refresh_diff()
        im = self.images
        if im is None:
            return out
        if im.clean is not None:
            out["clean"] = im.clean
        if im.attacked is not None:
            out["attacked"] = im.attacked
        d = self._defended()
        if d is not None:
            out[f"defended-attacked--{self.current_defence()}"] = d
            dc = im.defended_clean.get(self.current_defence() or "")
            if dc is not None:
                out[f"defended-clean--{self.current_defence()}"] = dc
        if self._diff_rgb is not None:
            out["difference-abs"] = self._diff_rgb
        if self._diff_signed is not None:
            m = float(np.abs(self._diff_signed).max()) or 1.0
            lut = pg.colormap.get("CET-D1").getLookupTable(nPts=256, mode="byte")[:, :3]
            idx = np.clip((self._diff_signed / m + 1) * 127.5, 0, 255).astype(np.uint8)
            out["difference-signed"] = lut[idx]
        return out
