"""Time of one attack iteration against the bare metric forward+backward, side by side.

    python bench/bench_attacks.py [--attacks ifgsm,korhonen,...] [--metrics niqe,metaiqa]
                                  [--size 512x384] [--device auto|cpu|cuda] [--runs 2]
                                  [--threads 1]

For each metric (learned ones with random weights: nothing is downloaded) and each attack,
on the same 512×384 photo, it measures in one process:

* ``iter``: the wall time between two consecutive step records of the attack (one full
  iteration: its update, the forward+backward, the step record);
* ``base``: the bare metric forward + backward of the MSU loss on the same input, run
  between the attack's steps just before each timed iteration (the attack is a
  generator), so that each pair sees the same load on a shared machine.

``ratio`` is the median over pairs of ``iter / base``: the attack's overhead; the goal
is ≤ 1.05 (Zhang's iteration also runs its full-reference distance, part of the method). ``uap`` applies a
saved perturbation (no gradient), so it is compared with a bare forward instead.
A benchmark, not a test: it prints numbers and asserts nothing.
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

DEFAULT_ATTACKS = "fgsm,ifgsm,mifgsm,amifgsm,pgd,korhonen,madc,zhang,ssah,advcf,uap"
LEARNED_RANDOM = {"metaiqa", "linearity", "spaq"}  # built with pretrained=False here


def photo(w: int, h: int):
    import skimage.data
    import torch
    import torch.nn.functional as F

    arr = skimage.data.astronaut()[..., :3]
    x = torch.from_numpy(arr).permute(2, 0, 1).float().div(255).unsqueeze(0)
    return F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def add_machine_options(ap: argparse.ArgumentParser, size: str) -> None:
    """``--size W×H``, ``--device`` and ``--threads``, which every timing benchmark takes."""
    ap.add_argument("--size", default=size, help="W×H of the input")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU")


def machine(args: argparse.Namespace):
    """Apply ``--threads``; the resolved device and the input's width and height."""
    import torch

    from engine.run.runtime import resolve_device

    torch.set_num_threads(max(1, args.threads))
    w, h = (int(v) for v in args.size.lower().split("x"))
    return resolve_device(args.device), w, h


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fb(metric, x) -> float:
    """One bare forward+backward of the MSU loss."""
    import torch

    from engine.metrics.base import attack_loss

    sync(x.device)
    t = time.perf_counter()
    xr = x.detach().requires_grad_(True)
    loss = attack_loss(metric, metric.score(xr, grad=True))
    torch.autograd.grad(loss.sum(), xr)
    sync(x.device)
    return time.perf_counter() - t


def time_forward(metric, x) -> float:
    """One bare forward (no graph)."""
    sync(x.device)
    t = time.perf_counter()
    metric.score(x)
    sync(x.device)
    return time.perf_counter() - t


def paired_timings(attack, x, metric, runs: int, which: str, base_fn) -> tuple[list[float], list[float], int]:
    """Attack iterations, each paired with a bare metric call timed just before it.

    The attack is a generator, so between two of its step records the benchmark runs
    one bare call, then resumes the attack and times it up to its next record: each pair
    sees the same machine load. ``which``: ``"middle"``: the intervals between records
    0..n−1 (update + forward+backward + record; the last interval, a forward only, is left
    out); ``"first"``: start to record 0 (FGSM's single forward+backward); ``"last"``: the
    final interval (UAP: apply + forward).
    """
    import torch

    iters: list[float] = []
    bases: list[float] = []
    n_steps = 0
    for r in range(runs):
        gen = attack.run(x, metric, generator=torch.Generator().manual_seed(r))
        intervals, paired = [], []
        k = -1
        while True:
            b = base_fn(metric, x)
            sync(x.device)
            t = time.perf_counter()
            try:
                next(gen)
            except StopIteration:
                break
            sync(x.device)
            intervals.append(time.perf_counter() - t)
            paired.append(b)
            k += 1
        n_steps = k + 1
        if which == "first":
            sel = [0]
        elif which == "last":
            sel = [len(intervals) - 1]
        else:
            sel = list(range(1, len(intervals) - 1))
        iters += [intervals[i] for i in sel]
        bases += [paired[i] for i in sel]
    return iters, bases, n_steps


def build_attack(name: str, metric, x, tmp: Path):
    from engine.attacks import ATTACKS

    cls = ATTACKS.get(name)
    if name != "uap":
        return cls()
    import torch

    from engine.attacks.uap import save_uap

    delta = (torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 10 / 255
    path = save_uap(tmp / "bench_uap.pt", delta, {"note": "random, for timing"})
    return cls(perturbation=str(path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--attacks", default=DEFAULT_ATTACKS, help="comma-separated attack names")
    ap.add_argument("--metrics", default="niqe,metaiqa", help="comma-separated metric names")
    ap.add_argument("--runs", type=int, default=2, help="runs per attack")
    add_machine_options(ap, "512x384")
    args = ap.parse_args()

    import torch

    from engine.metrics import create_metric

    device, w, h = machine(args)
    x = photo(w, h).to(device)
    print(f"device {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
          f"input {w}×{h}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    header = f"{'metric':10} {'attack':9} {'steps':>5} {'iter ms':>9} {'base ms':>9} {'ratio':>6}  base"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for mname in [m for m in args.metrics.split(",") if m]:
            kw = {"pretrained": False} if mname in LEARNED_RANDOM else {}
            metric = create_metric(mname, device=str(device), **kw)
            time_fb(metric, x)  # warm-up
            for aname in [a for a in args.attacks.split(",") if a]:
                try:
                    attack = build_attack(aname, metric, x, Path(tmp))
                    forward_only = aname == "uap"
                    which = "last" if forward_only else ("first" if aname == "fgsm" else "middle")
                    base_fn = time_forward if forward_only else time_fb
                    if device.type == "cuda":  # kernels and caches warm before timing
                        paired_timings(attack, x, metric, 1, which, base_fn)
                    runs = args.runs if which == "middle" else 5 * args.runs  # one timed step per run
                    its, bases, n_steps = paired_timings(attack, x, metric, runs, which, base_fn)
                except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
                    print(f"{mname:10} {aname:9} failed: {exc}")
                    continue
                it, b = statistics.median(its), statistics.median(bases)
                ratio = statistics.median([i / j for i, j in zip(its, bases)])
                print(f"{mname:10} {aname:9} {n_steps - 1:>5} {it * 1e3:9.1f} {b * 1e3:9.1f} {ratio:6.3f}  "
                      f"{'fwd' if forward_only else 'fwd+bwd'}{'' if ratio <= 1.05 else '  > 1.05'}")


if __name__ == "__main__":
    main()
