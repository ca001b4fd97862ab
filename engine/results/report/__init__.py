"""Self-contained HTML reports (plots, tables, image strips) built from a result store.

Nothing here imports Qt: figures are drawn with matplotlib's object API on the Agg canvas.
"""
from __future__ import annotations

from engine.results.report.build import build_report

__all__ = ["build_report"]
