"""A whole experiment against its unavoidable work, side by side in one process.

    python bench/bench_experiment.py [--metrics niqe,brisque] [--sizes 384x256,768x512]
                                     [--defence jpeg,median-blur] [--images 3]
                                     [--iters 10] [--repeats 2] [--device cpu]

The experiment is I-FGSM (``--iters`` steps) with none + the given defences, run through
``run_experiment`` into a store (load, attack, defences, pair measures, rows, commits).
Its unavoidable work, computed directly on the same images: the clean score, ``iters``
forward+backward passes, the final iterate's score, per defence two applies and two
scored forwards (``none``: nothing), and the distinct pair measures (x vs x_a once, four
per defence). Both are timed alternately ``--repeats`` times; the best of each is
compared. Goal: whole ≤ 1.10 × unavoidable on the CPU. A benchmark: prints, asserts nothing.
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


def whole(exp, runtime, store_path: Path) -> float:
    from engine.run.driver import run_experiment
    from engine.store.db import ResultStore

    store = ResultStore(store_path)
    t0 = time.perf_counter()
    for _ in run_experiment(exp, store, runtime=runtime):
        pass
    dt = time.perf_counter() - t0
    store.close()
    store_path.unlink()
    return dt


def unavoidable(exp, runtime, tensors) -> float:
    import torch

    from engine.attacks.base import loss_and_grad
    from engine.evaluation.pairs import compare

    metric = runtime.metric(exp.metrics[0])
    attack = runtime.attack(exp.attacks[0])
    defences = [runtime.defence(d) for d in exp.defences]
    p = attack.params
    t0 = time.perf_counter()
    for x in tensors:
        x = x.to(runtime.device)
        metric.score(x)
        delta = torch.zeros_like(x)
        for _ in range(p.iters):
            _, _, g = loss_and_grad(metric, (x + delta).clamp(0, 1))
            delta = (delta - p.alpha * g.sign()).clamp(-p.eps, p.eps)
        xa = (x + delta).clamp(0, 1)
        metric.score(xa)
        compare(xa, x)
        for d in defences:
            with torch.no_grad():
                dx, dxa = d(x, seed=0), d(xa, seed=0)
            metric.score(dx)
            metric.score(dxa)
            for a, b in ((x, dx), (x, dxa), (xa, dxa), (dx, dxa)):
                compare(a, b)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--metrics", default="niqe,brisque")
    ap.add_argument("--sizes", default="384x256,768x512")
    ap.add_argument("--defence", default="jpeg,median-blur")
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from engine.spec.experiment import ComponentSpec, Experiment
    from engine.spec.folders import find_images
    from engine.io.images import load_image
    from engine.run.runtime import Runtime

    runtime = Runtime(args.device)
    print(f"device {runtime.device}; ifgsm (iters={args.iters}) × [none,{args.defence}], "
          f"{args.images} images, best of {args.repeats}")
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "imgs"
            folder.mkdir()
            make_folder(folder, args.images, (w, h))
            tensors = [load_image(p).tensor for p in find_images(folder)]
            for metric in args.metrics.split(","):
                exp = Experiment(images=find_images(folder), root=str(folder), metrics=[metric],
                                 attacks=[ComponentSpec("ifgsm", {"iters": args.iters})],
                                 defences=[ComponentSpec.parse(d) for d in args.defence.split(",") if d],
                                 device=args.device)
                unavoidable(exp, runtime, tensors[:1])  # build and warm up
                t_whole, t_min = [], []
                for r in range(args.repeats):
                    t_whole.append(whole(exp, runtime, Path(tmp) / f"r{r}.sqlite"))
                    t_min.append(unavoidable(exp, runtime, tensors))
                a, b = min(t_whole), min(t_min)
                print(f"{metric:>8} {w}x{h}: whole {a:7.2f} s   unavoidable {b:7.2f} s   "
                      f"ratio {a / b:.3f}×", flush=True)


if __name__ == "__main__":
    main()
