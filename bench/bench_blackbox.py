"""Time per query of the score-only attacks against a bare metric forward, side by side.

    python bench/bench_blackbox.py [--attacks square,parsimonious,onepixel,patch-rs]
                                   [--metrics brisque,metaiqa] [--size 256x256]
                                   [--queries 300] [--device auto|cpu|cuda] [--threads 1]

For each metric (learned ones with random weights: nothing is downloaded) and attack, on
the same photo, in one process: the attack runs with a budget of ``--queries``; before
each of its steps (a block of queries) the benchmark times one bare forward of the image
(no graph), then times the step and divides it by the queries the step spent. ``ratio``
is the median over steps of ``(step time / queries) / bare forward``: the search's
overhead per query (below 1 where an attack scores several candidates per metric call,
e.g. a population or a mini-batch of block flips). A benchmark, not a test: it prints
numbers and asserts nothing.
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

DEFAULT_ATTACKS = "square,parsimonious,onepixel,patch-rs"
#: per attack: settings that give several steps within a small budget
SETTINGS = {"onepixel": {"popsize": 20}, "parsimonious": {"batch_blocks": 16}}


def per_query_timings(attack, x, metric) -> tuple[list[float], list[float], int]:
    """(seconds per query of each step, the bare forward timed just before it, queries used)."""
    import torch

    gen = attack.run(x, metric, generator=torch.Generator().manual_seed(0))
    per_query, bases, last_q = [], [], None
    while True:
        b = time_forward(metric, x)
        sync(x.device)
        t = time.perf_counter()
        try:
            rec = next(gen)
        except StopIteration:
            break
        sync(x.device)
        dt = time.perf_counter() - t
        if last_q is not None and rec.queries > last_q:
            per_query.append(dt / (rec.queries - last_q))
            bases.append(b)
        last_q = rec.queries
    return per_query, bases, last_q or 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--attacks", default=DEFAULT_ATTACKS, help="comma-separated black-box attack names")
    ap.add_argument("--metrics", default="brisque,metaiqa", help="comma-separated metric names")
    ap.add_argument("--queries", type=int, default=300, help="query budget per attack run")
    add_machine_options(ap, "256x256")
    args = ap.parse_args()

    import torch

    from engine.attacks import ATTACKS
    from engine.metrics import create_metric

    device, w, h = machine(args)
    x = photo(w, h).to(device)
    print(f"device {device}, input {w}×{h}, budget {args.queries} queries, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    header = f"{'metric':10} {'attack':13} {'queries':>7} {'ms/query':>9} {'fwd ms':>8} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for mname in [m for m in args.metrics.split(",") if m]:
        kw = {"pretrained": False} if mname in LEARNED_RANDOM else {}
        metric = create_metric(mname, device=str(device), **kw)
        time_forward(metric, x)  # warm-up
        for aname in [a for a in args.attacks.split(",") if a]:
            try:
                attack = ATTACKS.get(aname)(queries=args.queries, **SETTINGS.get(aname, {}))
                per_q, bases, used = per_query_timings(attack, x, metric)
            except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
                print(f"{mname:10} {aname:13} failed: {exc}")
                continue
            if not per_q:
                print(f"{mname:10} {aname:13} no timed steps")
                continue
            ratio = statistics.median([q / b for q, b in zip(per_q, bases)])
            print(f"{mname:10} {aname:13} {used:>7} {statistics.median(per_q) * 1e3:9.2f} "
                  f"{statistics.median(bases) * 1e3:8.2f} {ratio:6.2f}")


if __name__ == "__main__":
    main()
