"""What keeping exact float copies of attacked images costs, and what it saves.

    python bench/bench_attack_reuse.py [--size 512x384] [--images 4] [--metric niqe]
                                       [--attack ifgsm:iters=10] [--threads 1]

On real photos (skimage.data) it runs the grid {jpeg} twice — with ``keep_attacked``
(into store K) and without (into store P) — then the grown grid {jpeg, median-blur} on
both stores, and prints:

* the bytes one kept copy takes (the ``.npy`` file and its JSON record) against
  3·H·W·4, and the first run's time with and without keeping copies;
* the grown run's time on K (the attack replayed from the copies: only median-blur runs)
  and on P (the attack computed again), and whether their rows are equal (timings left out).

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

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "camera")
TIMING = {"attack_time", "defence_time"}


def _photos(folder: Path, n: int, w: int, h: int) -> None:
    import numpy as np
    import skimage.data
    from PIL import Image

    for name in PHOTOS[:n]:
        img = getattr(skimage.data, name)()
        img = np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]
        Image.fromarray(img).resize((w, h), Image.BICUBIC).save(folder / f"{name}.png")


def _timed(exp, store) -> float:
    from engine.run.driver import run_experiment

    t0 = time.perf_counter()
    for _ in run_experiment(exp, store):
        pass
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="512x384")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--metric", default="niqe")
    ap.add_argument("--attack", default="ifgsm:iters=10")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    from engine.spec.experiment import Experiment
    from engine.spec.folders import find_images
    from engine.store.db import ResultStore

    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-reuse-"))
    (tmp / "photos").mkdir()
    _photos(tmp / "photos", args.images, w, h)

    def exp(defences, **kw):
        return Experiment(images=find_images(tmp / "photos"), root=str(tmp / "photos"), metrics=[args.metric],
                          attacks=[args.attack], defences=defences, device="cpu", **kw)

    kept, plain = ResultStore(tmp / "K" / "results.sqlite"), ResultStore(tmp / "P" / "results.sqlite")
    t_plain = _timed(exp(["jpeg"]), plain)
    t_kept = _timed(exp(["jpeg"], keep_attacked=True), kept)
    npy = sorted((tmp / "K" / "attacked").glob("*.npy"))
    per = [p.stat().st_size + p.with_suffix(".json").stat().st_size for p in npy]
    print(f"{len(npy)} images {w}x{h}, {args.metric}, {args.attack}, {args.threads} thread(s)")
    print(f"one copy: {npy[0].stat().st_size} B .npy + {npy[0].with_suffix('.json').stat().st_size} B record "
          f"(3*H*W*4 = {3 * w * h * 4} B); {sum(per) / len(per):.0f} B per image in all")
    print(f"first run {{jpeg}}: {t_plain:.2f} s without copies, {t_kept:.2f} s keeping them")
    grown = exp(["jpeg", "median-blur"])
    t_replay, t_again = _timed(grown, kept), _timed(grown, plain)
    same = ([{k: v for k, v in r.items() if k not in TIMING} for r in kept.rows(grown.id)]
            == [{k: v for k, v in r.items() if k not in TIMING} for r in plain.rows(grown.id)])
    print(f"median-blur added: {t_replay:.2f} s replaying the kept attacks, {t_again:.2f} s attacking again; "
          f"rows equal: {same}")


if __name__ == "__main__":
    main()
