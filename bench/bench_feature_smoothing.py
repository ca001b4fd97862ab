"""Certified width and time of ``feature-smoothing`` against ``randomized-smoothing`` at
the same pixel L2 radius, on the same photos and metric.

    python bench/bench_feature_smoothing.py [--metric metaiqa] [--size 128x128] [--photos 2]
                                            [--radius 0.05] [--sigma 0.25] [--n 100]
                                            [--power-iters 20] [--device auto|cpu|cuda] [--threads 1]

Per photo (skimage's astronaut, coffee, chelsea, …), one certify of each defence with the
same seed: ``width`` = (high − low) / metric range of the certified interval at r;
``time`` = seconds per certify (feature-smoothing: one backbone pass, the power iteration
and n head passes; randomized-smoothing: n full metric passes). Feature smoothing also
reports σ̂_max (the backbone Jacobian's largest singular value) and the feature radius.
Learned metrics are built with random weights (nothing is downloaded). A benchmark, not a
test: it prints numbers and asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_attacks import LEARNED_RANDOM, add_machine_options, machine, sync  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")


def photo(name: str, w: int, h: int):
    import skimage.data
    import torch
    import torch.nn.functional as F

    arr = getattr(skimage.data, name)()[..., :3]
    x = torch.from_numpy(arr).permute(2, 0, 1).float().div(255).unsqueeze(0)
    return F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--metric", default="metaiqa", help="a learned metric with a head (random weights)")
    ap.add_argument("--photos", type=int, default=2, help="how many photos")
    ap.add_argument("--radius", type=float, default=0.05, help="pixel L2 radius r")
    ap.add_argument("--sigma", type=float, default=0.25, help="σ of both (pixels for RS, features for FS)")
    ap.add_argument("--n", type=int, default=100, help="noise samples of both")
    ap.add_argument("--power-iters", type=int, default=20, help="feature-smoothing's power iterations")
    add_machine_options(ap, "128x128")
    args = ap.parse_args()

    import torch

    from engine.defences import DEFENCES
    from engine.metrics import create_metric

    device, w, h = machine(args)
    kw = {"pretrained": False} if args.metric in LEARNED_RANDOM else {}
    metric = create_metric(args.metric, device=str(device), **kw)
    common = dict(sigma=args.sigma, n=args.n, radius=args.radius)
    rs = DEFENCES.get("randomized-smoothing")(**common)
    fs = DEFENCES.get("feature-smoothing")(**common, power_iters=args.power_iters)
    print(f"device {device}, {args.metric}, input {w}×{h}, r = {args.radius}, σ = {args.sigma}, n = {args.n}, "
          f"power iterations {args.power_iters}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    header = f"{'photo':22} {'RS width':>9} {'RS s':>7} {'FS width':>9} {'FS s':>7} {'σ̂_max':>8} {'r_f':>8}"
    print(header)
    print("-" * len(header))
    rows = []
    for name in PHOTOS[:args.photos]:
        x = photo(name, w, h).to(device)
        rs_c, rs_t = timed(lambda: rs.certify(metric, x, seed=0))
        sync(device)
        fs_c, fs_t = timed(lambda: fs.certify(metric, x, seed=0))
        sync(device)
        rs_w = float(rs_c.high[0] - rs_c.low[0]) / metric.range
        fs_w = float(fs_c.high[0] - fs_c.low[0]) / metric.range
        rows.append((rs_w, rs_t, fs_w, fs_t))
        print(f"{name:22} {rs_w:9.3f} {rs_t:7.2f} {fs_w:9.3f} {fs_t:7.2f} "
              f"{float(fs_c.lipschitz[0]):8.3f} {float(fs_c.feature_radius[0]):8.4f}")
    med = [statistics.median(c) for c in zip(*rows)]
    print(f"{'median':22} {med[0]:9.3f} {med[1]:7.2f} {med[2]:9.3f} {med[3]:7.2f}")


if __name__ == "__main__":
    main()
