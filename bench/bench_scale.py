"""Images per second of a whole experiment at batch 1, 4 and 16, side by side in one process.

    python bench/bench_scale.py [--metrics niqe,brisque,linearity] [--batches 1,4,16]
                                [--images 16] [--size 512x384] [--attack ifgsm:iters=3]
                                [--defence ""] [--device cpu|cuda]

Learned metrics (``linearity``, ``metaiqa``) use random weights (``pretrained=False``), so
nothing is downloaded. Each batch size runs the same folder (skimage photos resized to
the given size) into a fresh store, after one warm-up item; the rows of every batch size
are checked to be those of batch 1 (bit for bit except learned metrics, whose batched
convolutions round differently). A benchmark, not a test: it prints numbers.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TORCH_HOME", str(ROOT.parent / "shared" / "iqa-weights"))

from bench.bench_experiment import make_folder  # noqa: E402

LEARNED = {"linearity", "metaiqa", "spaq"}
TIMING = {"attack_time", "defence_time"}


def metric_spec(name: str):
    from engine.spec.experiment import ComponentSpec

    return ComponentSpec(name, {"pretrained": False}) if name in LEARNED else ComponentSpec(name)


def run_once(folder: Path, store_path: Path, metric: str, batch: int, args, runtime):
    from engine.core.events import ItemFinished
    from engine.spec.experiment import ComponentSpec, Experiment
    from engine.spec.folders import find_images
    from engine.run.driver import run_experiment
    from engine.store.db import ResultStore

    exp = Experiment(images=find_images(folder), root=str(folder), metrics=[metric_spec(metric)],
                     attacks=[ComponentSpec.parse(args.attack)],
                     defences=[ComponentSpec.parse(d) for d in args.defence.split(",") if d],
                     device=args.device, batch_size=batch)
    store = ResultStore(store_path)
    t0 = time.perf_counter()
    done = sum(isinstance(ev, ItemFinished) for ev in run_experiment(exp, store, runtime=runtime))
    dt = time.perf_counter() - t0
    rows = sorted(({k: v for k, v in r.items() if k not in TIMING} for r in store.rows(exp.id)),
                  key=lambda r: (r["item_id"], r["defence_label"]))
    store.close()
    return done, dt, rows


def same(a: list[dict], b: list[dict], rel: float) -> bool:
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for k, va in ra.items():
            vb = rb.get(k)
            if isinstance(va, float) and isinstance(vb, float):
                if not (va == vb or math.isclose(va, vb, rel_tol=rel, abs_tol=rel)):
                    return False
            elif va != vb:
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--metrics", default="niqe,brisque,linearity")
    ap.add_argument("--batches", default="1,4,16")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--size", default="512x384")
    ap.add_argument("--attack", default="ifgsm:iters=3")
    ap.add_argument("--defence", default="")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    batches = [int(b) for b in args.batches.split(",")]

    from engine.run.runtime import Runtime

    runtime = Runtime(args.device)
    print(f"device {runtime.device}; {args.images} images at {w}x{h}; {args.attack}; "
          f"defences [none{',' + args.defence if args.defence else ''}]")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "imgs"
        folder.mkdir()
        make_folder(folder, args.images, (w, h))
        warm = Path(tmp) / "warm"
        warm.mkdir()
        make_folder(warm, 1, (w, h))
        for metric in args.metrics.split(","):
            run_once(warm, Path(tmp) / f"warm-{metric}.sqlite", metric, 1, args, runtime)
            base_rows, line = None, []
            for b in batches:
                done, dt, rows = run_once(folder, Path(tmp) / f"{metric}-{b}.sqlite", metric, b, args, runtime)
                if base_rows is None:
                    base_rows, base_rate = rows, done / dt
                ok = same(rows, base_rows, 1e-4 if metric in LEARNED else 0.0)
                line.append(f"batch {b:>2}: {done / dt:7.3f} img/s ({done / dt / base_rate:4.2f}×)"
                            f"{'' if ok else ' ROWS DIFFER'}")
            print(f"{metric:>10}  " + "  ".join(line), flush=True)


if __name__ == "__main__":
    main()
