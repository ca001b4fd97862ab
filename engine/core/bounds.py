"""MSU metric bounds ``(worst, best)``: the ranges used to normalise attack losses and gains.

Keys are registry names; both the paper's spelling and pyiqa's are listed where they differ.
"""
from __future__ import annotations

MSU_BOUNDS: dict[str, tuple[float, float]] = {
    "linearity": (25.78, 83.23),
    "spaq": (21.75, 77.76),
    "metaiqa": (0.0, 1.0),
    "niqe": (28.74, 1.414),
    "brisque": (95.61, -10.61),
    "nima": (3.711, 6.188),
    "paq2piq": (58.38, 84.17),
    "hyperiqa": (25.9, 84.54),
    "musiq": (22.76, 77.96),
    "maniqa": (0.0, 1.0),
    "clipiqa": (0.0, 1.0),
    "mdtvsfa": (0.0, 1.0),
    "dbcnn": (26.7, 83.64),
    "koncept": (26.4, 66.87),
    "tres": (-7.187, 71.4),
    "liqe": (1.0, 5.0),
    "unique": (-2.657, 2.196),
}

_ALIASES = {"meta-iqa": "metaiqa", "hyper-iqa": "hyperiqa", "clip-iqa": "clipiqa",
            "koncept512": "koncept", "clip-iqa+": "clipiqa", "clipiqa+": "clipiqa"}


def msu_bounds(name: str) -> tuple[float, float] | None:
    """The MSU ``(worst, best)`` for a metric name, trying pyiqa's variants (``musiq-koniq``)."""
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key in MSU_BOUNDS:
        return MSU_BOUNDS[key]
    base = key.split("-")[0].split("_")[0]
    base = _ALIASES.get(base, base)
    return MSU_BOUNDS.get(base)
