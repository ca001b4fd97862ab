"""``python main.py train-fcn FOLDER --attack … --metric … --epochs N --out ckpt.pt``.

Prints one line per epoch. Ctrl+C stops after saving (the last finished epoch is kept);
running the same command again resumes, the epoch counter continuing.
"""
from __future__ import annotations

import argparse
import sys

from engine.cli.common import drive_training
from engine.core.errors import EXIT_USAGE


def add_train_fcn_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``train-fcn`` sub-command (sets ``func=train_fcn_cli``)."""
    p = subparsers.add_parser(
        "train-fcn", help="train the paper's FCN purification filter on a folder",
        description="Attack every image of FOLDER, then train the FCN filter to map attacked "
                    "images back to clean ones (MSE, Adam; best checkpoint by validation SSIM). "
                    "Run the same command again to resume.")
    p.add_argument("folder", metavar="FOLDER", help="folder of clean training images")
    p.add_argument("--attack", default=None,
                   help="attack making the training pairs, e.g. advcf or 'ifgsm:eps=4/255' "
                        "(default: advcf, the paper's; ifgsm when advcf is not installed)")
    p.add_argument("--metric", default="linearity", help="metric the attack targets (default: linearity)")
    p.add_argument("--epochs", type=int, default=200, help="target number of epochs (default: 200)")
    p.add_argument("--batch-size", type=int, default=4, help="batch size (default: 4)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--val-split", type=float, default=0.2, help="validation share (default: 0.2)")
    p.add_argument("--crop", type=int, default=128, help="training crop size in pixels (default: 128)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--residual", action="store_true", help="train x + tanh(f(x)) instead of tanh(f(x))")
    p.add_argument("--out", default="fcn.pt", help="checkpoint to write (default: fcn.pt)")
    p.add_argument("--no-resume", action="store_true", help="start over even if OUT.last.pt exists")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.set_defaults(func=train_fcn_cli)
    return p


def train_fcn_cli(args: argparse.Namespace) -> int:
    """Run ``train-fcn``; returns the process exit code."""
    from engine.metrics.base import MetricError
    from engine.metrics.weights import WeightsUnavailable
    from engine.spec.registry import UnknownComponent
    from engine.training import TrainingError, train_fcn

    def on_pair(done: int, total: int, name: str) -> None:
        print(f"attacked {done}/{total}: {name}", flush=True)

    run = train_fcn(args.folder, attack=args.attack, metric=args.metric, epochs=args.epochs,
                    batch_size=args.batch_size, lr=args.lr, val_split=args.val_split, seed=args.seed,
                    checkpoint_path=args.out, resume=not args.no_resume, device=args.device,
                    crop_size=args.crop, residual=args.residual, on_pair=on_pair)
    try:
        return drive_training(run, lambda s: f"epoch {s.epoch}/{s.epochs}  train_loss {s.train_loss:.6f}  "
                                             f"val_ssim {s.val_ssim:.4f}  ({s.seconds:.1f}s)",
                              lambda best: f"best checkpoint: {best}", args.out)
    except WeightsUnavailable:
        raise  # the CLI's error boundary reports it with its own exit code
    except (TrainingError, MetricError, UnknownComponent, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
