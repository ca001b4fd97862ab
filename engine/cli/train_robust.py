"""``python main.py train-robust FOLDER --metric NAME --method M …``.

Prints one line per epoch (training loss, validation SROCC/PLCC, gain of the fixed
validation attack). Ctrl+C stops after saving; running the same command again resumes.
The result loads as ``NAME:weights=OUT`` and shows in results as ``NAME+RECIPE#hash``.
"""
from __future__ import annotations

import argparse
import sys

from engine.cli.common import drive_training, fraction
from engine.core.errors import EXIT_USAGE
from engine.training.options import DEFAULT_TRAIN_ATTACK, DEFAULT_VAL_ATTACK, METHODS, MOS_FORMATS


def add_train_robust_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``train-robust`` sub-command (sets ``func=train_robust_cli``)."""
    p = subparsers.add_parser(
        "train-robust", help="fine-tune a learned metric to be robust (AT, free AT, corrected AT, NT)",
        description="Fine-tune a differentiable learned metric on images with subjective scores, "
                    "plainly or robustly; saves weights that METRIC:weights=OUT loads. "
                    "Run the same command again to resume.")
    p.add_argument("folder", metavar="FOLDER", help="data set folder (mos.csv or a standard data set layout)")
    p.add_argument("--metric", required=True, help="metric to fine-tune, e.g. linearity or 'cnniqa:pretrained=false'")
    p.add_argument("--method", choices=METHODS, default="none", help="training method (default: none)")
    p.add_argument("--mos-format", choices=MOS_FORMATS, default="auto", help="subjective score layout (default: auto)")
    p.add_argument("--epochs", type=int, default=10, help="target number of epochs (default: 10)")
    p.add_argument("--batch-size", type=int, default=8, help="batch size (default: 8)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: 1e-4)")
    p.add_argument("--loss", choices=("l1", "mse"), default="l1", help="fit loss on score/range (default: l1)")
    p.add_argument("--val-split", type=float, default=0.2, help="validation share (default: 0.2)")
    p.add_argument("--crop", type=int, default=224, help="training crop size in pixels (default: 224)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--attack", default=None, help=f"training attack of at/at-corrected (default: {DEFAULT_TRAIN_ATTACK})")
    p.add_argument("--eps", type=fraction, default=4 / 255, help="free-at: L∞ budget (default: 4/255)")
    p.add_argument("--replays", type=int, default=4, help="free-at: replays per batch (default: 4)")
    p.add_argument("--label-measure", choices=("ssim", "lpips"), default="ssim",
                   help="at-corrected: how much the attack changed the image (default: ssim)")
    p.add_argument("--penalty", type=float, default=1.0, help="at-corrected: label penalty (default: 1)")
    p.add_argument("--nt-weight", type=float, default=0.1, help="nt: λ (default: 0.1 on score/range)")
    p.add_argument("--nt-h", type=float, default=1e-2, help="nt: finite-difference step (default: 0.01)")
    p.add_argument("--val-attack", default=DEFAULT_VAL_ATTACK, help=f"validation attack (default: {DEFAULT_VAL_ATTACK})")
    p.add_argument("--val-attack-images", type=int, default=8, help="validation images attacked per epoch (default: 8)")
    p.add_argument("--best-by", choices=("srocc", "gain"), default="srocc", help="keep-best criterion (default: srocc)")
    p.add_argument("--out", default="robust.pt", help="weights to write (default: robust.pt)")
    p.add_argument("--no-resume", action="store_true", help="start over even if OUT.last.pt exists")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.set_defaults(func=train_robust_cli)
    return p


def train_robust_cli(args: argparse.Namespace) -> int:
    """Run ``train-robust``; returns the process exit code."""
    from engine.metrics.base import MetricError
    from engine.metrics.weights import WeightsUnavailable
    from engine.spec.registry import UnknownComponent
    from engine.training.pairs import TrainingError
    from engine.training.robust import train_robust

    try:
        run = train_robust(args.folder, metric=args.metric, method=args.method, mos_format=args.mos_format,
                           epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, loss=args.loss,
                           val_split=args.val_split, seed=args.seed, crop_size=args.crop, attack=args.attack,
                           eps=args.eps, replays=args.replays, label_measure=args.label_measure,
                           penalty=args.penalty, nt_weight=args.nt_weight, nt_h=args.nt_h,
                           val_attack=args.val_attack, val_attack_images=args.val_attack_images,
                           best_by=args.best_by, checkpoint_path=args.out, resume=not args.no_resume,
                           device=args.device)
        name = args.metric.split(":")[0]
        return drive_training(run, lambda s: f"epoch {s.epoch}/{s.epochs}  train_loss {s.train_loss:.5f}  "
                                             f"val_srocc {s.val_srocc:.4f}  val_plcc {s.val_plcc:.4f}  "
                                             f"val_gain {s.val_gain:.4f}  ({s.seconds:.1f}s)",
                              lambda best: f"best weights: {best}  (use as --metric '{name}:weights={best}')",
                              args.out)
    except WeightsUnavailable:
        raise  # the CLI's error boundary reports it with its own exit code
    except (TrainingError, MetricError, UnknownComponent, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
