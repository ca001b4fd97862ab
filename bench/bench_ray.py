"""The ray back end's cost on one machine: per-item overhead against local, and throughput.

    python bench/bench_ray.py [--metric brisque] [--size 384x256] [--images 4] [--iters 10]
                              [--defences jpeg,median-blur] [--runs 3] [--cpus N]

One process starts a local Ray instance with ``--cpus`` CPUs (default: all) and runs the
same experiment (real photos from skimage, I-FGSM, the given defences) side by side:

* ``local``: the local back end with torch using all ``--cpus`` threads;
* ``ray ×1``: one Ray worker holding all ``--cpus`` (the same threads), so the difference
  is Ray's own cost: shipping image bytes, streaming every event and outcome back;
* ``ray ×2``: two workers sharing the CPUs (half the threads each), items in parallel;
* ``ray ×1 polled``: ray ×1 with the outputs polled instead of streamed (how units travel
  over Ray Client, ``ray://``), against local in its own alternating pairs.

Each back end is warmed up first (models built, first item run), then local and ray ×1
alternate ``--runs`` times (which goes first alternates too) so both see the same load; ``overhead`` is the median over
pairs of ``ray ×1 / local − 1`` (goal ≤ 5 % at 384×256 on BRISQUE). Throughput is items
per second of wall time. A benchmark, not a test: it prints numbers and asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TORCH_HOME", str(ROOT.parent / "shared" / "iqa-weights"))

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def make_folder(folder: Path, n: int, w: int, h: int) -> None:
    import skimage.data
    from PIL import Image

    for i in range(n):
        name = PHOTOS[i % len(PHOTOS)]
        img = Image.fromarray(getattr(skimage.data, name)()[..., :3]).resize((w, h), Image.LANCZOS)
        img.save(folder / f"{i:02d}-{name}.png")


def timed_run(exp, backend, tmp: Path, tag: str) -> float:
    """Wall seconds of one whole run into a fresh store."""
    from engine.run.driver import run_experiment
    from engine.store.db import ResultStore

    store = ResultStore(tmp / f"{tag}-{time.monotonic_ns()}.sqlite")
    t0 = time.perf_counter()
    last = list(run_experiment(exp, store, backend=backend))[-1]
    seconds = time.perf_counter() - t0
    store.close()
    if last.failed:
        raise SystemExit(f"{tag}: {last.failed} item(s) failed; fix the set-up first")
    return seconds


def pair(i: int, run_local, run_ray) -> tuple[float, float]:
    """(local, ray) seconds, the order alternating with ``i`` so neither always goes first."""
    if i % 2:
        t_ray = run_ray()
        return run_local(), t_ray
    t_local = run_local()
    return t_local, run_ray()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metric", default="brisque")
    ap.add_argument("--size", default="384x256")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--defences", default="jpeg,median-blur")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))

    import ray
    import torch

    from engine.run.backends import LocalBackend
    from engine.run.backends.ray_backend import RayBackend
    from engine.spec.experiment import Experiment
    from engine.spec.folders import find_images
    from engine.run.runtime import Runtime

    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        folder = tmp / "photos"
        folder.mkdir()
        make_folder(folder, args.images, w, h)
        images = find_images(folder)

        def exp(seed: int, imgs: list[str]) -> Experiment:
            return Experiment(images=imgs, root=str(folder), metrics=[args.metric],
                              attacks=[f"ifgsm:iters={args.iters}"],
                              defences=[x for x in args.defences.split(",") if x], seed=seed, device="cpu")

        warm, main_exp = exp(1, images[:1]), exp(2, images)
        torch.set_num_threads(args.cpus)
        local = LocalBackend(Runtime("cpu"))
        timed_run(warm, local, tmp, "warm-local")

        def pairs_with(backend, tag: str) -> list[tuple[float, float]]:
            """Warm ``backend`` up, then ``--runs`` alternating (local, backend) pairs; closes it."""
            timed_run(warm, backend, tmp, f"warm-{tag}")
            try:
                return [pair(i, lambda: timed_run(main_exp, local, tmp, "local"),
                             lambda: timed_run(main_exp, backend, tmp, tag)) for i in range(args.runs)]
            finally:
                backend.close()

        pairs = pairs_with(RayBackend("cpu", workers=1), "ray1")
        # Ray Client's carrier, measured on this (ordinary) connection
        polled_pairs = pairs_with(RayBackend("cpu", workers=1, poll=True), "polled")
        two = RayBackend("cpu", workers=2)
        timed_run(exp(1, images[:2]), two, tmp, "warm-ray2")  # both workers build their models
        t_two = statistics.median(timed_run(main_exp, two, tmp, "ray2") for _ in range(max(1, args.runs // 2)))
        two.close()
    ray.shutdown()

    n = len(images)
    t_local = statistics.median(p[0] for p in pairs)
    t_one = statistics.median(p[1] for p in pairs)
    overhead = statistics.median(r / lo - 1 for lo, r in pairs)
    print(f"{args.metric} {w}×{h}, I-FGSM {args.iters} iterations, defences {args.defences}; "
          f"{n} items per run, {args.cpus} CPUs, torch {torch.__version__}, ray {ray.__version__}")
    print(f"{'back end':<10} {'threads':>7} {'s/run':>8} {'s/item':>8} {'items/s':>8}")
    for name, threads, t in (("local", args.cpus, t_local), ("ray ×1", args.cpus, t_one),
                             ("ray ×2", max(1, args.cpus // 2), t_two)):
        print(f"{name:<10} {threads:>7} {t:>8.2f} {t / n:>8.3f} {n / t:>8.3f}")
    print(f"ray ×1 per-item overhead against local: {100 * overhead:+.1f} % (median of {len(pairs)} "
          f"pairs: {', '.join(f'{100 * (r / lo - 1):+.1f}' for lo, r in pairs)} %); goal ≤ 5 %")
    print(f"ray ×1 polled (the ray:// carrier) against local: "
          f"{100 * statistics.median(r / lo - 1 for lo, r in polled_pairs):+.1f} % (median of {len(polled_pairs)} pairs)")
    print(f"ray ×2 throughput against ray ×1: {t_one / t_two:.2f}×")


if __name__ == "__main__":
    main()
