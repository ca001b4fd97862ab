"""Matplotlib figures on the Agg canvas and their PNG/SVG files.

The object API (``Figure`` + ``FigureCanvasAgg``) never touches pyplot's global backend,
so building a report inside the GUI process neither needs nor disturbs Qt.
"""
from __future__ import annotations

import base64
import io
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

STYLE = {
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "axes.edgecolor": "#555555",
    "svg.hashsalt": "iqa-report",  # stable SVG ids, so rebuilt reports diff cleanly
    "svg.fonttype": "path",        # text as paths: the SVG needs no font installed
}

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


@contextmanager
def report_style() -> Iterator[None]:
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure in inches attached to an Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


@dataclass(frozen=True)
class SavedFigure:
    """A figure written next to the report, with its PNG kept for inlining."""

    stem: str
    title: str
    png: Path
    svg: Path | None
    png_bytes: bytes
    width_in: float = 6.0  # figure width, so the page shows every figure at the same text size

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png_bytes).decode("ascii")


def save_figure(fig: Figure, out_dir: Path, stem: str, title: str, *, svg: bool = True,
                dpi: int = 200) -> SavedFigure:
    """Write ``stem.png`` (and ``stem.svg``) under ``out_dir``.

    Args:
        fig: the figure.
        out_dir: folder for the files (created).
        stem: file name without suffix.
        title: caption used by the HTML.
        svg: also write an SVG.
        dpi: PNG resolution.

    Returns:
        A :class:`SavedFigure` holding the PNG bytes for inlining.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with report_style():
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white",
                    metadata={"Software": None})
        png = out_dir / f"{stem}.png"
        png.write_bytes(buf.getvalue())
        svg_path = None
        if svg:
            svg_path = out_dir / f"{stem}.svg"
            fig.savefig(svg_path, format="svg", facecolor="white", metadata={"Date": None})
    return SavedFigure(stem, title, png, svg_path, buf.getvalue(), float(fig.get_figwidth()))
