"""Help pages: score definitions, how to run a study, keyboard shortcuts, About."""
from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from gui.columns import column_title, column_tooltip
from gui.shortcuts import SHORTCUTS

SCORE_KEYS = ["clear", "attacked", "defended-clear", "defended-attacked", "nonpurified_abs_gain", "robust_abs_gain",
              "robust_rel_gain", "both_defended_abs_gain", "gain_removed", "quality_score", "quality_score_clear",
              "geometry_aware_quality", "similarity_score", "robustness", "flag"]

STUDY_HTML = """
<h2>How to run a study</h2>
<ol>
<li><b>Open a folder</b> of images (File → Open folder, drop a folder on the Images panel, or
File → Open sample folder). Results already stored for that folder show at once.</li>
<li><b>Choose metrics</b> (ready ones are green; hover for why one is not), <b>attacks</b> and
<b>defences</b> in the Experiment panel. Tick an entry to edit its parameters; a preset's
“all presets” runs a sweep.</li>
<li>Set the <b>run options</b>: device, seed, EOT draws, batch size, back end (local, or a Ray
cluster with its address and workers) and the output folder (by default one per image folder).</li>
<li><b>Run → Preview plan</b> lists the items, a time estimate from earlier runs, and every chosen
component that cannot run. <b>Run</b> refuses such a run and offers to skip those parts.</li>
<li>Follow the run: the score curve per iteration, the progress and ETA, the inspector showing each
finished item. Cancel keeps every finished item; running again resumes.</li>
<li><b>Read the results</b>: the table (Columns ▾ for presets: summary, gains, quality, pair
measures, timing), the plots, the inspector (difference, blink, swipe, region statistics).
Flags mark attacks that did not gain or drove a score past the metric's bounds.</li>
<li><b>Export</b> the CSVs (raw and summary, MSU's column names) or build the report, from the
File menu; both write the experiment shown in the Results combo.</li>
</ol>
"""


def scores_html() -> str:
    rows = "".join(f"<tr><td><b>{escape(column_title(k))}</b></td><td>{escape(column_tooltip(k)).replace(chr(10), '<br>')}"
                   "</td></tr>" for k in SCORE_KEYS)
    return ("<h2>Score definitions</h2><p>x is the clean image, xₐ the attacked one, D the defence, M the "
            "metric; range is the metric's MSU range. The same definitions head the report.</p>"
            f"<table cellpadding='4' border='0'>{rows}</table>")


def shortcuts_html() -> str:
    rows = "".join(f"<tr><td><code>{escape(k)}</code></td><td>{escape(m)} → {escape(e)}</td></tr>"
                   for m, e, k in SHORTCUTS)
    return f"<h2>Keyboard shortcuts</h2><table cellpadding='4'>{rows}</table>"


def versions() -> dict[str, str]:
    """Versions of the tool, torch, pyiqa and Qt, and the compute device."""
    import importlib.metadata as md

    import PySide6
    from PySide6.QtCore import qVersion

    out: dict[str, str] = {}
    for name, dist in (("tool", "iqa-purification-lab"), ("torch", "torch"), ("pyiqa", "pyiqa")):
        try:
            out[name] = __import__(dist).__version__ if dist != "iqa-purification-lab" else md.version(dist)
        except (ImportError, AttributeError, md.PackageNotFoundError):
            try:
                out[name] = md.version(dist)
            except md.PackageNotFoundError:
                out[name] = "not installed"
    out["Qt"] = f"{qVersion()} (PySide6 {PySide6.__version__})"
    try:
        import torch

        out["device"] = (f"CUDA: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
                         else f"CPU ({torch.get_num_threads()} threads)")
    except Exception as exc:  # noqa: BLE001
        out["device"] = f"unknown ({exc})"
    return out


def about_html() -> str:
    rows = "".join(f"<tr><td><b>{escape(k)}</b></td><td>{escape(v)}</td></tr>" for k, v in versions().items())
    return ("<h2>IQA Purification Lab</h2><p>Adversarial attacks on no-reference image-quality metrics "
            f"and purification defences: attacks, defences, scores, reports.</p><table cellpadding='4'>{rows}</table>")


class HelpPage(QDialog):
    """One page of rich text."""

    def __init__(self, title: str, html: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("help_page")
        self.resize(720, 560)
        lay = QVBoxLayout(self)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(False)
        self.browser.setHtml(html)
        lay.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)


class HelpPages(QObject):
    """Opens the Help menu's pages (non-modal; the last one opened is :attr:`page`)."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.w = window
        self.page: HelpPage | None = None

    def _show(self, title: str, html: str) -> HelpPage:
        self.page = HelpPage(title, html, self.w)
        self.page.show()
        return self.page

    def show_scores(self) -> HelpPage:
        return self._show("Score definitions", scores_html())

    def show_study(self) -> HelpPage:
        return self._show("How to run a study", STUDY_HTML)

    def show_shortcuts(self) -> HelpPage:
        return self._show("Keyboard shortcuts", shortcuts_html())

    def show_about(self) -> HelpPage:
        return self._show("About", about_html())

