"""Time per query of ``grad-est`` against a bare metric forward, and against the same
queries scored as one batch.

    python bench/bench_grad_est.py [--metrics brisque,metaiqa] [--size 256x256]
                                   [--iters 5] [--draws 20] [--device auto|cpu|cuda] [--threads 1]

For each metric (learned ones with random weights: nothing is downloaded), on one photo,
in one process: grad-est (MSU's recipe: 20 antithetic pairs per iteration, so 41 queries an
iteration) runs ``--iters`` iterations; before each iteration the benchmark times one bare
forward of the image, then the iteration, divided by the queries it spent. Printed:
``ms/query``, ``fwd ms`` (one image alone), ``ratio`` = the median of their quotient (the
attack's cost per query in bare forwards: below 1 because the 40 candidates of an
iteration are scored together), and ``batch ms`` = one forward of a 40-image batch divided
by 40 (the floor the attack can reach; ``over`` = ms/query ÷ batch ms, the draws, tiling
and bookkeeping on top). A benchmark, not a test: it prints numbers and asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_attacks import LEARNED_RANDOM, add_machine_options, machine, photo, sync, time_forward  # noqa: E402
from bench.bench_blackbox import per_query_timings  # noqa: E402


def batch_forward_per_image(metric, x, n: int, repeats: int = 3) -> float:
    """Seconds per image of one forward of ``n`` copies of ``x`` (best of ``repeats``)."""
    import torch

    xs = x.expand(n, -1, -1, -1).contiguous() + torch.rand_like(x.expand(n, -1, -1, -1)) * 1e-3
    best = float("inf")
    for _ in range(repeats):
        sync(x.device)
        t = time.perf_counter()
        metric.score(xs.clamp(0, 1))
        sync(x.device)
        best = min(best, time.perf_counter() - t)
    return best / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--metrics", default="brisque,metaiqa", help="comma-separated metric names")
    ap.add_argument("--iters", type=int, default=5, help="grad-est iterations to time")
    ap.add_argument("--draws", type=int, default=20, help="antithetic pairs per iteration (MSU: 20)")
    add_machine_options(ap, "256x256")
    args = ap.parse_args()

    import torch

    from engine.attacks import ATTACKS
    from engine.metrics import create_metric

    device, w, h = machine(args)
    x = photo(w, h).to(device)
    queries = 1 + args.iters * (2 * args.draws + 1)
    print(f"device {device}, input {w}×{h}, {args.iters} iterations × {2 * args.draws + 1} queries, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    header = f"{'metric':10} {'queries':>7} {'ms/query':>9} {'fwd ms':>8} {'ratio':>6} {'batch ms':>9} {'over':>6}"
    print(header)
    print("-" * len(header))
    for mname in [m for m in args.metrics.split(",") if m]:
        kw = {"pretrained": False} if mname in LEARNED_RANDOM else {}
        metric = create_metric(mname, device=str(device), **kw)
        time_forward(metric, x)  # warm-up
        attack = ATTACKS.get("grad-est").from_preset("msu-recipe", queries=queries, draws=args.draws)
        per_q, bases, used = per_query_timings(attack, x, metric)
        batch = batch_forward_per_image(metric, x, 2 * args.draws)
        ratio = statistics.median([q / b for q, b in zip(per_q, bases)])
        mq = statistics.median(per_q)
        print(f"{mname:10} {used:>7} {mq * 1e3:9.2f} {statistics.median(bases) * 1e3:8.2f} {ratio:6.2f} "
              f"{batch * 1e3:9.2f} {mq / batch:6.2f}")


if __name__ == "__main__":
    main()
