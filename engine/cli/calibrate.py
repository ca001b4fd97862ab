"""``python main.py calibrate IMAGES --metric M --attack A --budget linf=4/255``.

Searches each attack's strength so that the mean perturbation over a few images meets the
budget and stores the preset (``budgets.json`` by default). ``run --budget B`` uses the
stored preset of each attack, calibrating first where none is stored
(:func:`engine.run.prepare.prepare`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import split_names
from engine.core.errors import EXIT_OK, EXIT_USAGE, UsageError
from engine.run.prepare import PRESETS_NAME  # light: the spec and the errors, no torch


def cmd_calibrate(args: argparse.Namespace) -> int:
    from engine.run.calibration import CalibrationError, calibrate, save_preset
    from engine.run.prepare import describe_preset, validate
    from engine.run.runtime import DeviceError, Runtime
    from engine.spec.budgets import BudgetError, parse_budget
    from engine.spec.experiment import ComponentSpec, Experiment
    from engine.spec.folders import find_images

    try:
        src = Path(args.images)
        images = find_images(src) if src.is_dir() else ([str(src)] if src.is_file() else [])
        if not images:
            raise UsageError(f"{src}: no image files found")
        budget = parse_budget(args.budget)
        metrics = [ComponentSpec.parse(m) for m in split_names(args.metric)]
        attacks = [ComponentSpec.parse(a) for a in split_names(args.attack)]
        if not metrics or not attacks:
            raise UsageError("calibrate needs --metric and --attack")
        validate(Experiment(images=images, metrics=metrics, attacks=attacks))
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
            print(describe_preset(entry))
    print(f"wrote {out}")
    return EXIT_OK


def add_parser(subparsers) -> argparse.ArgumentParser:
    from engine.spec.budgets import NAMED

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
