"""Cost of one training epoch per robust-training method against plain training.

Same batches (seeded data set of real photos at graded blur/JPEG/noise levels), same
metric, same seed; only the method differs. Prints seconds per epoch and the ratio to
``none``. Expected from the methods' structure: NT adds an input gradient and one
forward (about 1.5–2.5×), AT with a k-step attack about k+1× (twice the batch is then
trained on, so a little more), free AT with m replays about m×.

    python bench/bench_robust_training.py [--metric cnniqa:pretrained=false] [--size 64] [--epochs 4]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TORCH_HOME", str(Path(__file__).resolve().parents[2] / "shared" / "iqa-weights"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--metric", default="cnniqa:pretrained=false")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=4, help="epochs per method; the first (warm-up) is not timed")
    ap.add_argument("--pgd-iters", type=int, default=3)
    args = ap.parse_args()

    import torch

    from engine.training.robust import train_robust
    from tests.engine.training._iqa_data import build_dataset

    methods = {"none": {}, "nt": {}, "at": {"attack": f"pgd:eps=4/255:alpha=1/255:iters={args.pgd_iters}"},
               "at-corrected": {"attack": f"pgd:eps=4/255:alpha=1/255:iters={args.pgd_iters}"},
               "free-at": {"replays": 4}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        build_dataset(folder, size=args.size)
        times: dict[str, float] = {}
        for method, kw in methods.items():
            out = Path(tmp) / f"{method}.pt"
            run = train_robust(folder, metric=args.metric, method=method, epochs=max(2, args.epochs), batch_size=8,
                               crop_size=args.size, lr=1e-4, val_attack_images=0, device="cpu",
                               checkpoint_path=out, **kw)
            # step.train_seconds: the epoch's training batches (no validation, no saving); the
            # median of the epochs after the first, which pays for lazy initialisation
            warm = sorted(step.train_seconds for step in run if step.epoch > 1)
            times[method] = warm[len(warm) // 2]
        print(f"metric {args.metric}, {args.size}×{args.size} crops, batch 8, torch threads {torch.get_num_threads()}, "
              f"load {os.getloadavg()[0]:.1f}")
        for method, t in times.items():
            print(f"{method:13s} {t:7.2f} s/epoch  ×{t / times['none']:.2f}")


if __name__ == "__main__":
    main()
