"""Synthetic result stores for the failure tests (real schema, made-up numbers)."""
from __future__ import annotations

from pathlib import Path

from engine.spec.experiment import Experiment
from engine.store.db import ResultStore


def synthetic_experiment(n_images: int = 8, defences=("jpeg", "median-blur", "resize")) -> Experiment:
    images = [f"/nowhere/img{i:02d}.png" for i in range(n_images)]
    return Experiment(images=images, root="/nowhere", metrics=["niqe"], attacks=["ifgsm"],
                      defences=list(defences), seed=0)


def fill_store(path: Path, exp: Experiment | None = None, pad: int = 900) -> Experiment:
    """A store with every item of ``exp`` done; rows padded so they span several pages."""
    exp = exp or synthetic_experiment()
    with ResultStore(path) as store:
        run = store.open_experiment(exp, {"test": True})
        for it in exp.items():
            rows = [{"defence_label": d.label, "image_name": it.image_name, "item_id": it.id, "metric": "niqe",
                     "attack": "ifgsm", "attack_preset": "", "defence": d.name, "defence_preset": "",
                     "clear": 1.0 + it.index, "attacked": 2.0 + k, "note": "x" * pad}
                    for k, d in enumerate(it.defences)]
            store.write_item(exp.id, it, rows, clean_score=1.0, attacked_score=2.0, steps=[], seconds=0.1, run=run)
    return exp


def damage_page(path: Path, needle: bytes = b'"item_id": ', fraction: float = 0.5) -> int:
    """Overwrite the page holding the first ``needle`` after ``fraction`` of the file; its number."""
    data = bytearray(path.read_bytes())
    page = data.find(needle, int(len(data) * fraction)) // 4096
    assert page > 1, "needle not found"
    data[page * 4096:(page + 1) * 4096] = b"\x5a" * 4096
    path.write_bytes(bytes(data))
    return page
