"""``calibrate`` and the study options of ``run`` (``--budget``, ``--study``).

``python main.py calibrate IMAGES --metric M --attack A --budget linf=4/255`` searches each
attack's strength so that the mean perturbation over a few images meets the budget and
stores the preset (``budgets.json`` by default). ``run --budget B`` uses the stored preset
of each attack, calibrating first where none is stored.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2  # the codes engine/cli.py documents
PRESETS_NAME = "budgets.json"


def describe(entry: dict[str, Any]) -> str:
    a = entry["achieved"]
    state = "meets it" if entry["close"] else (
        f"within it but not close: {entry['param']} alone cannot reach it (raise the attack's other "
        "parameters, e.g. iterations or step)" if entry["met"] else "NOT met: even the weakest setting exceeds it")
    return (f"{entry['attack']['name']} on {entry['metric']['name']}, budget {entry['budget']}: "
            f"{entry['param']}={entry['value']:.6g} → L∞ {a['linf'] * 255:.3g}/255, PSNR {a['psnr']:.2f} dB, "
            f"SSIM {a['ssim']:.4f} ({state}; {len(entry['trace'])} evaluations on {len(entry['images'])} images)")


def calibrated_attacks(exp, budget_text: str, presets: Path, runtime: Any,
                       log: Callable[[str], None] = lambda s: None) -> list:
    """Each attack of ``exp`` at its calibrated strength for the budget (calibrating where
    no preset is stored; new presets are saved to ``presets``).

    Raises:
        engine.budgets.BudgetError, engine.calibration.CalibrationError: bad budget, or an
            attack without a strength parameter.
    """
    from engine.budgets import parse_budget
    from engine.calibration import calibrate, calibrated_spec, find_preset, save_preset

    budget = parse_budget(budget_text)
    if len(exp.metrics) != 1:
        from engine.calibration import CalibrationError

        raise CalibrationError("--budget calibrates each attack on one metric: run once per metric")
    metric = exp.metrics[0]
    out = []
    for attack in exp.attacks:
        entry = find_preset(presets, metric, attack, budget)
        if entry is None:
            log(f"calibrating {attack.label} on {metric.label} to {budget.label} …")
            entry = calibrate(exp.images, metric, attack, budget, runtime=runtime, seed=exp.seed)
            save_preset(presets, entry)
        log(describe(entry))
        out.append(calibrated_spec(attack, entry))
    return out


def apply_budget(exp, budget_text: str | None, presets: Path, runtime: Any, log: Callable[[str], None]):
    """``exp`` with calibrated attacks and ``budget`` set (unchanged without a budget)."""
    if not budget_text:
        return exp
    return replace(exp, attacks=calibrated_attacks(exp, budget_text, presets, runtime, log), budget=budget_text)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from engine.budgets import BudgetError, parse_budget
    from engine.calibration import CalibrationError, calibrate, save_preset
    from engine.cli import UsageError, _split, _validate
    from engine.experiment import ComponentSpec, Experiment, find_images
    from engine.runtime import DeviceError, Runtime

    try:
        src = Path(args.images)
        images = find_images(src) if src.is_dir() else ([str(src)] if src.is_file() else [])
        if not images:
            raise UsageError(f"{src}: no image files found")
        budget = parse_budget(args.budget)
        metrics = [ComponentSpec.parse(m) for m in _split(args.metric)]
        attacks = [ComponentSpec.parse(a) for a in _split(args.attack)]
        if not metrics or not attacks:
            raise UsageError("calibrate needs --metric and --attack")
        _validate(Experiment(images=images, metrics=metrics, attacks=attacks))
        runtime = Runtime(args.device)
    except (UsageError, BudgetError, DeviceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    for metric in metrics:
        for attack in attacks:
            try:
                entry = calibrate(images, metric, attack, budget, runtime=runtime, seed=args.seed,
                                  n_images=args.n_images)
            except CalibrationError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_USAGE
            save_preset(out, entry)
            print(describe(entry))
    print(f"wrote {out}")
    return EXIT_OK


def add_calibrate_parser(subparsers) -> argparse.ArgumentParser:
    from engine.budgets import NAMED

    p = subparsers.add_parser("calibrate", help="find each attack's strength that meets a perturbation budget")
    p.add_argument("images", help="an image file or a folder (the first --images files are used)")
    p.add_argument("--metric", action="append", required=True)
    p.add_argument("--attack", action="append", required=True)
    p.add_argument("--budget", required=True,
                   help=f"{', '.join(NAMED)} or linf=4/255, psnr=40, ssim=0.98 (a bound on the mean over images)")
    p.add_argument("--out", default=PRESETS_NAME, help=f"preset file (JSON; default {PRESETS_NAME})")
    p.add_argument("--images", dest="n_images", type=int, default=3, help="how many images to calibrate on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.set_defaults(func=cmd_calibrate)
    return p


def add_run_options(run_parser: argparse.ArgumentParser) -> None:
    """``--budget``, ``--budget-presets``, ``--study`` and ``--ci`` for ``run``."""
    from engine.studies import list_studies

    run_parser.add_argument("--budget", default=None,
                            help="calibrate every attack to this budget first (linf-2/4/8/16, linf=4/255, "
                                 "psnr=40, ssim=0.98); rows record it and what each image reached")
    run_parser.add_argument("--budget-presets", default=None,
                            help=f"calibrated presets to use and extend (default OUT/{PRESETS_NAME})")
    run_parser.add_argument("--study", default=None, choices=list_studies(),
                            help="run a study's grid (its attacks × defences × presets) on the chosen metric")
    run_parser.add_argument("--protocol", choices=["lab", "msu"], default=None,
                            help="evaluation protocol: lab (default; the attack's float image) or msu (MSU's "
                                 "defence_evaluate.py: the attacked image rounded to 8 bits before scoring and "
                                 "defending); a study names its own")
    run_parser.add_argument("--survives-compression", type=int, default=None, metavar="Q",
                            help="also score the attacked image JPEG-compressed at quality Q (adds jpeg:q=Q; "
                                 "the leaderboard's survives-compression column)")
    run_parser.add_argument("--ci", dest="ci_method", choices=["bootstrap", "t"], default="bootstrap",
                            help="95 %% intervals in the CSVs: image bootstrap (default) or the t-interval")
