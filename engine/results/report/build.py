"""Build the report folder: report.html, figures/*.png|svg, raw.csv and summary.csv."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from engine.results.report.data import ReportData, load_report_data
from engine.results.report.figures import SavedFigure, save_figure
from engine.results.report.html import render_page
from engine.results.report.plots import gain_distribution, pareto_plot, score_curves
from engine.results.report.strips import select_cases, strip_figure
from engine.store.paths import store_file

REPORT_NAME = "report.html"
STRIP_DPI = 120  # photos: PNG size grows with the square of this; panels stay near native size


def make_plots(data: ReportData, fig_dir: Path) -> list[tuple[SavedFigure, str]]:
    """Draw and save every plot the data allows, with its caption."""
    out: list[tuple[SavedFigure, str]] = []
    fig = score_curves(data.items)
    if fig is not None:
        out.append((save_figure(fig, fig_dir, "attack_curves", "Metric score during each attack"),
                    "Score of the metric at each attack iteration (iteration 0 = clean image; for "
                    "score-only attacks the best score against the queries spent); thin lines "
                    "are single images, the thick line their mean, the dashed line the mean clean score."))
    fig = gain_distribution(data.rows, "robust_abs_gain")
    if fig is not None:
        out.append((save_figure(fig, fig_dir, "gain_per_defence", "Remaining gain per defence"),
                    "Per-image |M(x) − M(D(x_a))| / range (lower is better); “none” is the undefended "
                    "attack gain. Boxes: quartiles and median; points: images, coloured by attack."))
    fig = pareto_plot(data.summary)
    if fig is not None:
        out.append((save_figure(fig, fig_dir, "quality_vs_gain", "Quality against remaining gain"),
                    "One point per defence/preset, means over all attacks (error bars: 95 % intervals over images): quality (SSIM + PSNR/80)/2 of "
                    "D(x_a) against the clean image vs remaining gain. Red points and the step line mark "
                    "the Pareto front (no other defence has both higher quality and lower gain); the "
                    "square is no defence."))
    return out


def make_strips(data: ReportData, fig_dir: Path) -> tuple[list[tuple[SavedFigure, str]], str]:
    """Image-strip figures, or a note saying why there are none."""
    if not data.rows:
        return [], "No finished item yet."
    if data.image_lookup is None:
        return [], ("Images were not saved for this run, so no strips can be shown. Enable it with "
                    "`python main.py run … --save-images` (or Experiment(save_images=True), or the GUI's "
                    "“save images” option) and run again.")
    attack_cases, defence_cases = select_cases(data.rows, k=3)
    label_of = lambda r: r.get("defence_label") or r.get("defence")  # noqa: E731
    out = []
    fig = strip_figure(attack_cases, data.image_lookup, label_of)
    if fig is not None:
        out.append((save_figure(fig, fig_dir, "strips_attack_gain", "Where the attack gained most", dpi=STRIP_DPI),
                    "Clean image, attacked image, the output of the defence that left the least gain on "
                    "it, and the attack's perturbation |x_a − x| (channel mean, scaled to its maximum)."))
    fig = strip_figure(defence_cases, data.image_lookup, label_of)
    if fig is not None:
        out.append((save_figure(fig, fig_dir, "strips_defence_failures", "Where defences failed most",
                                 dpi=STRIP_DPI),
                    "Images with the largest gain left after a defence: clean, attacked, defended attacked "
                    "image, and what survived the defence |D(x_a) − D(x)|."))
    note = "" if out else "Images were saved for this run but their files are missing next to the store."
    return out, note


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build_report(store_path: str | Path, out_dir: str | Path, experiment_id: str | None = None) -> Path:
    """Write a self-contained HTML report of one experiment, with its plots and CSVs.

    Everything is read from the store, so a finished or partly finished run can be
    reported (again) at any time.

    Args:
        store_path: ``results.sqlite`` or the folder holding it.
        out_dir: folder for ``report.html``, ``figures/`` (PNG + SVG), ``raw.csv``,
            ``summary.csv`` (created).
        experiment_id: which experiment (a unique prefix works); the latest when None.

    Returns:
        The path of ``report.html``.

    Raises:
        engine.store.db.StoreError: the store cannot be read or has no such experiment.

    Example:
        >>> build_report("out/results.sqlite", "out/report")  # doctest: +SKIP
        PosixPath('out/report/report.html')
    """
    import engine
    from engine.results.export import export_csv
    from engine.store.db import ResultStore

    path = store_file(store_path)
    out = Path(out_dir)
    with ResultStore(path, readonly=True) as store:
        data = load_report_data(store, experiment_id)
        out.mkdir(parents=True, exist_ok=True)  # only once there is something to report
        raw_csv, summary_csv = export_csv(store, out, data.experiment_id, derived={
            "summary": data.summary, "paired": data.paired, "leaderboard": data.leaderboard})
    fig_dir = out / "figures"
    plots = make_plots(data, fig_dir)
    strips, note = make_strips(data, fig_dir)
    files = [raw_csv.name, summary_csv.name, "paired.csv", "leaderboard.csv"]
    for fig, _ in (*plots, *strips):
        files.append(f"figures/{fig.png.name}")
        if fig.svg is not None:
            files.append(f"figures/{fig.svg.name}")
    page = render_page(data, figures=plots, strips=strips, strips_note=note, files=files,
                       store_name=path.name, tool_version=engine.__version__,
                       generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    report = out / REPORT_NAME
    _write_atomic(report, page)
    return report
