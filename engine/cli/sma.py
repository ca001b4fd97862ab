"""``python main.py sma FOLDER --metric NAME --mos mos.csv --eps 4/255 --out sma-out``.

Attacks a metric's **correlation** with subjective scores over a folder
(:func:`engine.attacks.sma.sma_attack`, arXiv 2404.13277): the images of the folder that
have a MOS are perturbed jointly (L∞ ≤ ε each) so SROCC/PLCC of the metric with MOS
falls. Writes to ``--out``:

* ``sma.csv``: one row per image (name, MOS, clean / attacked / target score, L∞, SSIM,
  and the set's SROCC/PLCC before and after repeated on every row);
* ``sma.json``: the settings, the correlations before and after and the same rows;
* with ``--save-images``, the attacked images as lossless PNGs under ``images/``.

The MOS file is ``--mos`` or a ``mos.csv`` lying in FOLDER (read by
:func:`engine.evaluation.correlation.read_mos`; names match by path, base name or stem).
Images without a MOS are left out (and counted). The set is attacked as one batch, so the
images must share a size: give ``--size N`` to resize every image to N×N first.
Failures go through the CLI's error boundary (exit 2 bad usage, 6 weights missing, 130
interrupted: nothing is written).
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

from engine.cli.common import device_arg, fraction, out_folder
from engine.core.errors import EXIT_OK, UsageError

CSV_NAME, JSON_NAME = "sma.csv", "sma.json"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``sma`` sub-command (sets ``func=cmd_sma``)."""
    p = subparsers.add_parser(
        "sma", help="attack a metric's correlation with MOS over a folder (SMA)",
        description="Perturb every image of FOLDER that has a MOS (L∞ ≤ EPS each) so the "
                    "metric's SROCC/PLCC with MOS falls; write per-image rows and the "
                    "correlations before and after to OUT/sma.csv and OUT/sma.json.")
    p.add_argument("folder", metavar="FOLDER", help="folder of images (searched recursively)")
    p.add_argument("--metric", required=True, help="the attacked metric")
    p.add_argument("--mos", default=None, help="CSV of image name and MOS (default: FOLDER/mos.csv)")
    p.add_argument("--eps", type=fraction, default=4 / 255, help="L∞ bound per image (default 4/255)")
    p.add_argument("--iters", type=int, default=20, help="sign steps of stage two (default 20)")
    p.add_argument("--alpha", type=fraction, default=1 / 255, help="sign-step size (default 1/255)")
    p.add_argument("--reach", type=fraction, default=None,
                   help="how far a target score may move, metric units (default 0.2 × the metric's range)")
    p.add_argument("--lam", type=fraction, default=0.1, help="stage one's score-change weight (default 0.1)")
    p.add_argument("--target-steps", type=int, default=300, help="stage one's Adam steps (default 300)")
    p.add_argument("--size", type=int, default=None, help="resize every image to SIZE×SIZE first")
    p.add_argument("--out", default="sma-out", help="output folder (default sma-out)")
    p.add_argument("--save-images", action="store_true", help="also write the attacked images as PNGs")
    p.add_argument("--device", type=device_arg, default="auto", help="auto, cpu, cuda or cuda:N")
    p.set_defaults(func=cmd_sma)
    return p


def _load_set(args: argparse.Namespace):
    """The images with a MOS, as one batch; their names (relative to FOLDER), MOS and how many were left out."""
    import torch
    import torch.nn.functional as F

    from engine.evaluation.correlation import MosError, read_mos
    from engine.io.images import ImageLoadError, load_image
    from engine.spec.folders import find_images, find_mos_file

    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    mos_path = args.mos or find_mos_file(folder)
    if not mos_path:
        raise UsageError(f"{folder}: no MOS file; give --mos FILE (a CSV of image name and MOS) "
                         "or put mos.csv in the folder")
    try:
        table = read_mos(mos_path)
    except MosError as exc:
        raise UsageError(str(exc)) from None
    names, mos, tensors, left_out = [], [], [], 0
    for path in find_images(folder):
        name = Path(path).relative_to(folder).as_posix()
        value = table.lookup(name)
        if value is None:
            left_out += 1
            continue
        try:
            x = load_image(path).tensor
        except ImageLoadError as exc:
            raise UsageError(str(exc)) from None
        if args.size:
            x = F.interpolate(x, size=(args.size, args.size), mode="bilinear", align_corners=False,
                              antialias=True).clamp(0, 1)
        names.append(name)
        mos.append(float(value))
        tensors.append(x)
    if len(tensors) < 3:
        raise UsageError(f"{folder}: sma needs at least 3 images with a MOS in {mos_path}, found {len(tensors)}")
    sizes = {tuple(t.shape[-2:]) for t in tensors}
    if len(sizes) > 1:
        raise UsageError(f"{folder}: the images have {len(sizes)} different sizes; the set is attacked "
                         "as one batch, so give --size N to resize them to N×N")
    return torch.cat(tensors), names, mos, left_out, mos_path


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def cmd_sma(args: argparse.Namespace) -> int:
    """Run ``sma``; the exit code (failures are raised to the CLI's error boundary)."""
    from engine.attacks.sma import sma_attack, sma_rows
    from engine.metrics import create_metric
    from engine.run.runtime import resolve_device

    for flag, value in (("--iters", args.iters), ("--target-steps", args.target_steps)):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    if args.size is not None and args.size < 16:
        raise UsageError(f"--size must be at least 16, got {args.size}")
    out = out_folder(args.out)
    x, names, mos, left_out, mos_path = _load_set(args)
    device = resolve_device(args.device)
    metric = create_metric(args.metric, device=str(device))
    try:
        result = sma_attack(x.to(device), mos, metric, eps=args.eps, reach=args.reach, iters=args.iters,
                            alpha=args.alpha, lam=args.lam, target_steps=args.target_steps)
    except ValueError as exc:
        raise UsageError(f"sma: {exc}") from None
    rows = sma_rows(result, names, mos)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / CSV_NAME, rows)
    summary = {
        "metric": args.metric, "eps": args.eps, "iters": args.iters, "alpha": args.alpha,
        "reach": args.reach, "lam": args.lam, "target_steps": args.target_steps, "size": args.size,
        "folder": str(Path(args.folder).resolve()), "mos_file": str(Path(mos_path).resolve()),
        "images": len(names), "left_out_without_mos": left_out, "device": str(device),
        "srocc_before": result.srocc_before, "srocc_after": result.srocc_after,
        "plcc_before": result.plcc_before, "plcc_after": result.plcc_after,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rows": rows,
    }
    (out / JSON_NAME).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    if args.save_images:
        from engine.io.images import save_png

        for name, img in zip(names, result.images):
            target = (out / "images" / name).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            save_png(img.unsqueeze(0), target)
    skipped = f" ({left_out} without a MOS left out)" if left_out else ""
    print(f"sma on {len(names)} images{skipped}: SROCC {result.srocc_before:.3f} → {result.srocc_after:.3f}, "
          f"PLCC {result.plcc_before:.3f} → {result.plcc_after:.3f}; max L∞ {float(result.linf.max()):.4f}, "
          f"min SSIM {float(result.ssim.min()):.3f}", flush=True)
    print(f"wrote {out / CSV_NAME} and {out / JSON_NAME}")
    return EXIT_OK
