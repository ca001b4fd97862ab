"""Time per smoothed score (one ``certify``) against n bare metric forwards, side by side.

    python bench/bench_smoothing.py [--metrics brisque,niqe] [--defences randomized-smoothing,...]
                                    [--n 100] [--batch 16] [--size 128] [--device auto|cpu|cuda]
                                    [--runs 3] [--threads 0]

For each metric and smoothing defence, on the same photo, it measures in one process and
alternating, so that each pair sees the same load on a shared machine:

* ``smoothed``: one ``defence.certify(metric, x, seed)``: n noise draws, the denoiser,
  n metric forwards in chunks of ``batch``, the interval;
* ``bare``: n metric forwards of the same noisy images in the same chunks (noise drawn
  beforehand, outside the timing): the floor any smoothing pays.

``ratio`` is the median over runs of ``smoothed / bare``: the overhead of drawing the
noise on the CPU generator (needed for device-independent draws), the denoiser and the
certificate. The denoised defences include their denoiser (median-blur here), so their
ratio also measures that restorer. A benchmark, not a test: it prints numbers and
asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TORCH_HOME", str(ROOT.parent / "shared" / "iqa-weights"))

DEFAULT_DEFENCES = "randomized-smoothing,median-smoothing,denoised-smoothing"

from bench_attacks import photo, sync  # noqa: E402 - the same photo and device sync as the attack benchmark


def bare(metric, x, sigma: float, n: int, batch: int, device) -> float:
    """n forwards of pre-drawn noisy copies, chunked like the defence."""
    import torch

    noisy = (x + sigma * torch.randn((n, *x.shape[1:]), generator=torch.Generator().manual_seed(0))
             .to(x.device)).clamp(0, 1)
    sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, n, batch):
            metric.score(noisy[i:i + batch])
    sync(device)
    return time.perf_counter() - t0


def smoothed(defence, metric, x, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    defence.certify(metric, x, seed=1)
    sync(device)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--metrics", default="brisque,niqe")
    ap.add_argument("--defences", default=DEFAULT_DEFENCES)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--sigma", type=float, default=0.25)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = ap.parse_args()

    import torch

    from engine.defences import DEFENCES
    from engine.metrics import create_metric
    from engine.run.runtime import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    x = photo(args.size, args.size).to(device)
    print(f"device {device}, {args.size}² photo, n={args.n}, batch={args.batch}, σ={args.sigma}, "
          f"runs={args.runs}, threads={torch.get_num_threads()}")
    print(f"{'metric':<10} {'defence':<22} {'smoothed s':>11} {'bare s':>9} {'ratio':>7}")
    for mname in args.metrics.split(","):
        metric = create_metric(mname, device=str(device))
        for dname in args.defences.split(","):
            d = DEFENCES.get(dname)(sigma=args.sigma, n=args.n, batch=args.batch).to(device)
            smoothed(d, metric, x, device)  # warm-up
            pairs = [(smoothed(d, metric, x, device), bare(metric, x, args.sigma, args.n, args.batch, device))
                     for _ in range(args.runs)]
            ratio = statistics.median(s / b for s, b in pairs)
            s_med = statistics.median(s for s, _ in pairs)
            b_med = statistics.median(b for _, b in pairs)
            print(f"{mname:<10} {dname:<22} {s_med:>11.3f} {b_med:>9.3f} {ratio:>7.3f}", flush=True)


if __name__ == "__main__":
    main()
