"""Gain of every literal preset against MSU's code re-derived as a plain loop (issue 15).

    python bench/bench_msu_conformance.py [--metric brisque] [--size 256] [--threads 1]
                                          [--attacks mifgsm,korhonen,...]

On the 5 real photos of the tests (``skimage.data``, centre crops of ``size``²), for each
attack preset listed in an attack's ``literal_presets`` it runs the preset and the
reference loop of ``tests/engine/attacks/msu_reference.py`` (one image at a time, as MSU
runs it) from the same clean image, and prints per photo the gain ``sign·(M(x_adv) − M(x))``
of both and their deviation ``|gain − gain_ref| / |gain_ref|``, then the worst and median
deviation per attack. For the attacks whose defaults follow the paper, the ``paper`` preset
is measured the same way, for contrast (issue 15's table measured those defaults). The goal
is every literal preset within 1 % of the reference gain. A benchmark: it asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TORCH_HOME", str((ROOT.parent / "shared" / "iqa-weights").resolve()))

import torch

from engine.attacks import ATTACKS
from engine.metrics import create_metric
from engine.metrics.base import MetricError
from tests.conftest import PHOTO_NAMES, photo_tensor
from tests.engine.attacks.msu_reference import REFERENCES


def gain(metric, clean: torch.Tensor, adv: torch.Tensor) -> float:
    return float(metric.sign * (metric.score(adv) - metric.score(clean)))


def deviation(g: float, g_ref: float) -> float:
    return abs(g - g_ref) / max(abs(g_ref), 1e-12) * 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--metric", default="brisque")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--attacks", default="", help="comma-separated attack names (default: all literal)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        metric = create_metric(args.metric, device="cpu")
    except MetricError as exc:  # e.g. weights not under TORCH_HOME: say which file and where
        sys.exit(f"bench_msu_conformance: {exc}")
    wanted = set(filter(None, args.attacks.split(",")))
    photos = {n: photo_tensor(n, (args.size, args.size)) for n in PHOTO_NAMES}
    print(f"metric {args.metric}, {len(photos)} photos {args.size}×{args.size}; gain = sign·(M(adv) − M(clean))")
    summary = []
    for (name, preset), reference in sorted(REFERENCES.items()):
        if wanted and name not in wanted:
            continue
        cls = ATTACKS.get(name)
        runs = [(preset, "literal")] + ([("paper", "paper")] if "paper" in cls.presets else [])
        for label, kind in runs:
            devs = []
            for pname, x in photos.items():
                g_ref = gain(metric, x, reference(x, metric))
                g = gain(metric, x, cls.from_preset(label)(x, metric).image)
                devs.append(deviation(g, g_ref))
                print(f"  {name}[{label}] {pname:22s} gain {g:9.4f}  reference {g_ref:9.4f}  "
                      f"deviation {devs[-1]:7.3f} %")
            summary.append((f"{name} `{label}`", kind, max(devs), statistics.median(devs)))
    print("\n| attack | preset kind | worst deviation | median |\n|---|---|---|---|")
    for label, kind, worst, median in summary:
        print(f"| {label} | {kind} | {worst:.2f} % | {median:.2f} % |")


if __name__ == "__main__":
    main()
