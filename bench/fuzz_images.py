"""Fuzz the image loader with damaged real PNG and JPEG files.

A seeded set of files made from skimage photos by flipping bytes, truncating, zeroing
or inserting spans, splicing one format's header onto another's body and forging huge
dimensions, each loaded as a run loads it (:func:`engine.io.images.load_image` on the
file, with the experiment's default ``max_pixels``). Every case must end as a valid
1×3×H×W tensor in [0, 1] or an ``ImageLoadError`` naming the file — no other exception,
no hang. ``tests/engine/io/test_fuzz_images.py`` runs a few hundred; this runs 1000:

    python bench/fuzz_images.py [--n 1000] [--seed 0]
"""
from __future__ import annotations

import argparse
import io
import random
import struct
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path


def source_files() -> dict[str, bytes]:
    """Small real photos as PNG (RGB, grayscale) and JPEG (baseline, progressive)."""
    import numpy as np
    import skimage.data
    from PIL import Image

    out: dict[str, bytes] = {}
    for name, size in (("astronaut", (64, 64)), ("coffee", (48, 80)), ("camera", (64, 40))):
        arr = getattr(skimage.data, name)()
        h, w = size
        arr = np.ascontiguousarray(arr[100:100 + h, 100:100 + w])
        im = Image.fromarray(arr)
        for fmt, kw in (("PNG", {}), ("JPEG", {"quality": 85}), ("JPEG", {"quality": 70, "progressive": True})):
            buf = io.BytesIO()
            im.save(buf, format=fmt, **kw)
            out[f"{name}-{fmt.lower()}{'-prog' if kw.get('progressive') else ''}"] = buf.getvalue()
    return out


def _png_with_size(data: bytes, w: int, h: int) -> bytes:
    """A PNG whose IHDR claims ``w``×``h`` (CRC fixed, so only the size is a lie)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return data
    ihdr = bytearray(data[8 + 8:8 + 8 + 13])
    ihdr[0:8] = struct.pack(">II", w, h)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return data[:16] + bytes(ihdr) + crc + data[33:]


def mutate(data: bytes, other: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One damaged variant of ``data`` (``other`` is another file for splicing)."""
    b = bytearray(data)
    kind = rng.choice(["flip", "flip-header", "truncate", "zero-span", "insert", "splice", "size", "repeat"])
    if kind == "flip":
        for _ in range(rng.randint(1, 24)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == "flip-header":
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(min(64, len(b)))] = rng.randrange(256)
    elif kind == "truncate":
        b = b[:rng.randrange(0, len(b))]
    elif kind == "zero-span":
        start = rng.randrange(len(b))
        b[start:start + rng.randint(1, 512)] = bytes(min(512, len(b) - start))
    elif kind == "insert":
        pos = rng.randrange(len(b))
        b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == "splice":
        cut, cut2 = rng.randrange(8, 200), rng.randrange(8, 200)
        b = bytearray(data[:cut] + other[cut2:])
    elif kind == "size":
        w, h = rng.choice([(1, 1), (0, 5), (100_000, 100_000), (9000, 4000), (65535, 1), (1 << 31, 2)])
        b = bytearray(_png_with_size(data, w, h))
    elif kind == "repeat":
        start = rng.randrange(len(b))
        b[start:start] = b[start:start + rng.randint(1, 2048)]
    return kind, bytes(b)


@dataclass
class Case:
    name: str
    kind: str
    data: bytes


def make_cases(n: int, seed: int = 0) -> list[Case]:
    """``n`` damaged files, the same for the same ``seed``."""
    rng = random.Random(seed)
    sources = source_files()
    names = sorted(sources)
    cases = []
    for i in range(n):
        src = names[i % len(names)]
        kind, data = mutate(sources[src], sources[rng.choice(names)], rng)
        ext = ".png" if "png" in src else ".jpg"
        cases.append(Case(f"fuzz{i:04d}-{kind}{ext}", kind, data))
    return cases


def load_case(case: Case, folder: Path) -> tuple[str, str, float]:
    """Write and load one case as a run would: ``(outcome, detail, seconds)``.

    ``outcome``: ``image`` (a valid tensor), ``error`` (an ImageLoadError naming the
    file), or ``BAD`` (anything else: a crash, a bad tensor, an anonymous message).
    """
    import torch

    from engine.spec.experiment import Experiment
    from engine.io.images import ImageLoadError, load_image

    path = folder / case.name
    path.write_bytes(case.data)
    max_pixels = Experiment.__dataclass_fields__["max_pixels"].default
    t0 = time.perf_counter()
    try:
        loaded = load_image(path, max_pixels=max_pixels)
    except ImageLoadError as exc:
        ok = case.name in str(exc)
        return ("error" if ok else "BAD"), str(exc), time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - exactly what the fuzz looks for
        return "BAD", f"{type(exc).__name__}: {exc}", time.perf_counter() - t0
    x = loaded.tensor
    good = (x.dim() == 4 and x.shape[:2] == (1, 3) and x.dtype == torch.float32
            and bool(torch.isfinite(x).all()) and float(x.min()) >= 0 and float(x.max()) <= 1)
    return ("image" if good else "BAD"), f"{tuple(x.shape)}", time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    counts: dict[str, int] = {}
    worst = 0.0
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in make_cases(args.n, args.seed):
            outcome, detail, seconds = load_case(case, Path(tmp))
            counts[outcome] = counts.get(outcome, 0) + 1
            worst = max(worst, seconds)
            if outcome == "BAD":
                bad.append(f"{case.name}: {detail}")
    print(f"{args.n} cases: {counts}; slowest load {worst * 1000:.0f} ms")
    for line in bad:
        print("  BAD", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
