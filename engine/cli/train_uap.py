"""``python main.py train-uap FOLDER --metric … --eps 10/255 --epochs N --out uap.pt``.

Trains one universal perturbation over a folder (``--method sign``:
:func:`engine.attacks.uap.train_uap`; ``cumulative``: raw-gradient accumulation,
:func:`engine.attacks.cumulative_uap.train_cumulative_uap`; ``generative``: a generator
network, :func:`engine.attacks.generative_uap.train_generative_uap`), prints one line per
epoch and saves δ with a manifest of every setting, so the file says how it was made; the
matching attack then applies it (``uap:perturbation=uap.pt``, ``cumulative-uap:…``,
``generative-uap:…``).
Ctrl+C saves nothing: a half-trained δ would not match its manifest.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from engine.cli.common import fraction
from engine.core.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
#: --method → the attack that applies the file
METHODS = {"sign": "uap", "cumulative": "cumulative-uap", "generative": "generative-uap", "cnn": "cnn-attack"}


def add_train_uap_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``train-uap`` sub-command (sets ``func=train_uap_cli``)."""
    p = subparsers.add_parser(
        "train-uap", help="train a universal adversarial perturbation on a folder",
        description="Train one perturbation δ (|δ|∞ ≤ eps) that raises METRIC on every image of "
                    "FOLDER (sign steps on mini-batches resized to SIZE×SIZE), then save it for "
                    "the 'uap' attack.")
    p.add_argument("folder", metavar="FOLDER", help="folder of training images (searched recursively)")
    p.add_argument("--metric", default="linearity", help="metric to raise (default: linearity)")
    p.add_argument("--eps", type=fraction, default=10 / 255, help="L∞ budget, e.g. 10/255 (default)")
    p.add_argument("--method", choices=tuple(METHODS), default="sign",
                   help="sign steps (uap, default), cumulative raw gradients (cumulative-uap), a "
                        "generator network (generative-uap) or a per-image generator (cnn-attack)")
    p.add_argument("--step", type=fraction, default=1 / 255, help="sign-step size (default: 1/255)")
    p.add_argument("--lr", type=fraction, default=None,
                   help="cumulative: gradient factor (default 1); generative, cnn: Adam rate (default 1e-3)")
    p.add_argument("--epochs", type=int, default=5, help="passes over the folder (default: 5)")
    p.add_argument("--batch-size", type=int, default=4, help="images per update (default: 4)")
    p.add_argument("--size", type=int, default=256, help="side of δ and of the training images (default: 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the image order (default: 0)")
    p.add_argument("--out", default="uap.pt", help="file to write (default: uap.pt)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.set_defaults(func=train_uap_cli)
    return p


def train_uap_cli(args: argparse.Namespace) -> int:
    """Run ``train-uap``; returns the process exit code."""
    from engine.attacks.uap import save_uap
    from engine.metrics import create_metric
    from engine.metrics.base import MetricError
    from engine.metrics.weights import WeightsUnavailable
    from engine.run.runtime import resolve_device

    if not Path(args.folder).is_dir():
        print(f"error: {args.folder!r} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        device = resolve_device(args.device)
        metric = create_metric(args.metric, device=str(device))
        run = _trainer(args, metric, device)
        last_score = float("nan")
        while True:
            try:
                s = next(run)
            except StopIteration as stop:
                delta = stop.value
                break
            if s.epoch_done:
                last_score = s.mean_score
                print(f"epoch {s.epoch + 1}/{args.epochs}  mean {args.metric} {s.mean_score:.4f}  "
                      f"loss {s.loss:.4f}", flush=True)
    except KeyboardInterrupt:
        print("stopped; nothing saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    except WeightsUnavailable:
        raise  # the CLI's error boundary reports it with its own exit code
    except (MetricError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    method = getattr(args, "method", "sign")
    manifest = {"metric": args.metric, "method": method, "eps": args.eps, "step": args.step,
                "lr": getattr(args, "lr", None), "epochs": args.epochs,
                "batch_size": args.batch_size, "size": args.size, "seed": args.seed,
                "folder": str(Path(args.folder).resolve()), "final_mean_score": last_score,
                "device": str(device), "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    # a trainer returns δ, or (cnn) a trained network that saves itself
    path = delta.save(args.out, manifest) if hasattr(delta, "save") else save_uap(args.out, delta, manifest)
    print(f"saved {path} (apply with --attack '{METHODS[method]}:perturbation={path}')", flush=True)
    return EXIT_OK


def _trainer(args: argparse.Namespace, metric, device):
    """The training generator ``--method`` names, with the command's settings."""
    common = dict(eps=args.eps, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                  size=args.size, device=device)
    method = getattr(args, "method", "sign")
    if method == "cumulative":
        from engine.attacks.cumulative_uap import train_cumulative_uap

        return train_cumulative_uap(args.folder, metric, lr=getattr(args, "lr", None) or 1.0, **common)
    if method == "cnn":
        from engine.attacks.cnn_attack import train_cnn_attack

        return train_cnn_attack(args.folder, metric, lr=getattr(args, "lr", None) or 1e-3, **common)
    if method == "generative":
        from engine.attacks.generative_uap import train_generative_uap

        return train_generative_uap(args.folder, metric, lr=getattr(args, "lr", None) or 1e-3, **common)
    from engine.attacks.uap import train_uap

    return train_uap(args.folder, metric, step=args.step, **common)
