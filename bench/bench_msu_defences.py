"""Deviation of every ``msu-literal`` defence preset from MSU's code re-derived (issue 27).

    python bench/bench_msu_defences.py [--threads 1]

On the 5 real photos of the tests (``skimage.data`` centre crops, 256×256 and 240×320),
each literal preset of resize, upscale, jpeg, diffjpeg and random-rotate is applied and
compared with ``tests/engine/defences/msu_defence_reference.py`` (jpeg on an off-grid
float copy, random-rotate with 3 seeds); printed per preset: the largest pixel deviation
(×255), the share of values more than 1/255 apart, and whether the output sizes agree.
The neural presets (fcn, realesrgan, disco) need weights and are measured with random
weights in ``tests/engine/defences/test_msu_literal.py``. A benchmark: it asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from engine.defences import DEFENCES
from tests.conftest import PHOTO_NAMES, photo_tensor
from tests.engine.defences import msu_defence_reference as ref


def _off_grid(x: torch.Tensor) -> torch.Tensor:
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) * 0.5 / 255
    return (x + 0.4 / 255 + noise).clamp(0, 1)


CASES = {
    "resize": ("scale", lambda x, v, s: (x, ref.resize(x, v))),
    "upscale": ("scale", lambda x, v, s: (x, ref.upscale(x, v).clamp(0, 1))),
    "jpeg": ("q", lambda x, v, s: (_off_grid(x), ref.jpeg(_off_grid(x), v))),
    "diffjpeg": ("q", lambda x, v, s: (x, ref.diffjpeg(x, v))),
    "random-rotate": ("angle_limit", lambda x, v, s: (x, ref.random_rotate(x, v, s))),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("| defence | preset | max deviation (/255) | share > 1/255 | sizes agree |")
    print("|---|---|---|---|---|")
    for name, (key, make) in CASES.items():
        cls = DEFENCES.get(name)
        for label in cls.literal_presets:
            d, value = cls.from_preset(label), cls.presets[label][key]
            worst, over, total, sizes = 0.0, 0, 0, True
            for size in ((256, 256), (240, 320)):
                for photo in PHOTO_NAMES:
                    for seed in ((3, 77, 123456) if cls.random else (0,)):
                        x, want = make(photo_tensor(photo, size), value, seed)
                        y = d(x, seed=seed)
                        if y.shape != want.shape:
                            sizes = False
                            continue
                        diff = (y - want).abs() * 255
                        worst = max(worst, float(diff.max()))
                        over += int((diff > 1.0 + 1e-4).sum())
                        total += diff.numel()
            print(f"| {name} | `{label}` | {worst:.4f} | {over / max(total, 1):.2e} | {'yes' if sizes else 'NO'} |")


if __name__ == "__main__":
    main()
