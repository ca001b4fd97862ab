"""Images per second for a whole experiment (load → attack → defences → store).

    python bench/bench_experiment.py [--metric niqe] [--attack ifgsm] [--defence jpeg,median-blur]
                                     [--images 6] [--size 512x384] [--device auto]

Uses skimage's bundled photos, resized to the given size, in a temporary folder.
A benchmark, not a test: it prints numbers and asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TORCH_HOME", str(ROOT.parent / "shared" / "iqa-weights"))


def make_folder(folder: Path, n: int, size: tuple[int, int]) -> None:
    import skimage.data
    from PIL import Image

    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field"]
    for i in range(n):
        img = Image.fromarray(getattr(skimage.data, names[i % len(names)])()[..., :3])
        img.resize(size, Image.BICUBIC).save(folder / f"{i:03d}.png")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--metric", default="niqe")
    ap.add_argument("--attack", default="ifgsm")
    ap.add_argument("--defence", default="jpeg,median-blur")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--size", default="512x384")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    from engine.events import AttackStep, ItemFinished
    from engine.experiment import ComponentSpec, Experiment, find_images
    from engine.runner import run_experiment
    from engine.runtime import Runtime
    from engine.store import ResultStore

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "imgs"
        folder.mkdir()
        make_folder(folder, args.images, (w, h))
        exp = Experiment(images=find_images(folder), root=str(folder), metrics=[args.metric],
                         attacks=[ComponentSpec.parse(args.attack)],
                         defences=[ComponentSpec.parse(d) for d in args.defence.split(",") if d],
                         device=args.device)
        runtime = Runtime(args.device)
        runtime.metric(exp.metrics[0])  # model building is not part of the throughput
        store = ResultStore(Path(tmp) / "r.sqlite")
        t0 = time.perf_counter()
        steps = done = 0
        for ev in run_experiment(exp, store, runtime=runtime):
            steps += isinstance(ev, AttackStep)
            done += isinstance(ev, ItemFinished)
        dt = time.perf_counter() - t0
    print(f"device {runtime.device}; {args.metric} × {args.attack} × [none,{args.defence}] at {w}x{h}")
    print(f"{done} images in {dt:.2f} s → {done / dt:.3f} images/s ({steps} attack steps, "
          f"{dt / max(done, 1):.2f} s per image)")


if __name__ == "__main__":
    main()
